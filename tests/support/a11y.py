"""A focused accessibility check of our own, run in the page by a real browser (no third-party
checker is copied into the repository): the document's language and title, a label for every form
control, a text alternative for every image, headings in order, WCAG AA contrast of text computed
from the computed styles, and every control reachable with the Tab key."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

CHECKS = r"""
() => {
  const problems = [];
  const visible = (el) => {
    const s = getComputedStyle(el);
    return s.display !== "none" && s.visibility !== "hidden" && el.getClientRects().length > 0;
  };
  if (!document.documentElement.lang) problems.push("html without lang");
  if (!document.title.trim()) problems.push("no title");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest("label")
      || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled) problems.push(`control without label: ${el.name || el.id}`);
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt");
  }
  for (const el of document.querySelectorAll("[role=img]")) {
    if (!el.getAttribute("aria-label")) problems.push("role=img without aria-label");
  }
  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map((h) => Number(h.tagName[1]));
  if (levels[0] !== 1) problems.push("the first heading is not h1");
  if (levels.filter((l) => l === 1).length !== 1) problems.push("not exactly one h1");
  levels.forEach((l, i) => { if (i && l > levels[i - 1] + 1) problems.push(`heading skips to h${l}`); });

  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    if (!visible(el) || el.closest("svg")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(el);
    const fg = rgb(s.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${el.tagName} "${text}"`);
  }
  return problems;
}
"""

FOCUSABLE = r"""
() => [...document.querySelectorAll("a[href], button, input, select, textarea")]
  .filter((el) => !el.disabled && el.type !== "hidden" && el.getClientRects().length > 0).length
"""

ACTIVE = "() => { const el = document.activeElement; return el ? el.outerHTML.slice(0, 80) : '' }"


def problems(page: Page) -> list[str]:
    """What the checks find on the page as shown now, plus controls the Tab key never reaches."""
    found: list[str] = page.evaluate(CHECKS)
    expected: int = page.evaluate(FOCUSABLE)
    reached: set[Any] = set()
    page.locator("body").focus()
    for _ in range(expected + 2):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(ACTIVE))
    reached.discard("")
    reached = {r for r in reached if not r.startswith("<body")}
    if len(reached) < expected:
        found.append(f"the Tab key reaches {len(reached)} of {expected} controls")
    return found
