from bench.cli import main

if __name__ == "__main__":  # not when a workload's own process imports it (bench/scanner.py)
    raise SystemExit(main())
