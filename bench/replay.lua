-- wrk script: send each pre-built request of a file once, in order, over all the connections of
-- one thread; then stop. Answers are counted by status and XRPC error name ("409 SoldOut").
-- The file holds records "<length>\n<raw HTTP request bytes>". Progress lines on stdout let the
-- caller time the phase (wrk itself runs for its whole -d): "started", "finished", "result {...}".

local requests, sent, answered, verified = {}, 0, 0, false
counts = {}

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    requests[#requests + 1] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
end

function request()
  if not verified then
    -- wrk calls request() once before connecting, to count pipelined requests: not a send
    verified = true
    return requests[1]
  end
  sent = sent + 1
  if sent == 1 then
    io.write("started\n")
    io.stdout:flush()
  end
  if sent > #requests then
    return "" -- nothing left: this connection stays idle until the thread stops
  end
  return requests[sent]
end

function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  if status ~= 200 then
    local name = body:match('"error"%s*:%s*"([^"]+)"')
    if name then
      key = key .. " " .. name
    end
  end
  counts[key] = (counts[key] or 0) + 1
  if answered == #requests then
    io.write("finished\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, _)
  local parts = {}
  for key, n in pairs(threads[1]:get("counts")) do
    parts[#parts + 1] = string.format('"%s": %d', key, n)
  end
  local e = summary.errors
  io.write(string.format(
    'result {"p50_us": %d, "p99_us": %d, "counts": {%s}, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d}}\n',
    latency:percentile(50), latency:percentile(99), table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout
  ))
  io.stdout:flush()
end
