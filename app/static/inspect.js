// What the `inspect` model says about each image ("image 2: data URI, image/png, 64×48,
// 912 bytes, sha256 …, no conversion") and each document ("document 1: report.pdf (data),
// 3 page(s), 65026 bytes, sha256 …; text characters per page: …; page images: …"), as facts to
// show next to its thumbnail.

const DESCRIBED = /^(.*?), (\S+\/\S+), (\d+)×(\d+), (\d+) bytes, sha256 ([0-9a-f]+), (.*)$/;

function imageFacts(description) {
  const parts = DESCRIBED.exec(description);
  if (!parts) return [["gateway", description]]; // a line of another form: shown as it is
  const [, source, mime, width, height, bytes, , conversion] = parts;
  return [
    ["type", mime],
    ["size", `${width}×${height} px, ${Number(bytes).toLocaleString("en")} bytes`],
    ["conversion", conversion],
    ["source", source],
  ];
}

export function factsByImage(answer) {
  // The answer's per-image lines, by image number (1-based).
  const facts = new Map();
  for (const line of answer.split("\n")) {
    const match = /^image (\d+): (.*)$/.exec(line);
    if (match) facts.set(Number(match[1]), imageFacts(match[2]));
  }
  return facts;
}

const DOCUMENT = /^(.*) \((data|fetched)\), (\d+) page\(s\), (\d+) bytes, sha256 ([0-9a-f]+); text characters per page: ([\d, ]*); page images: (.*)$/;

function documentFacts(description) {
  const parts = DOCUMENT.exec(description);
  if (!parts) return [["gateway", description]];
  const [, , source, pages, bytes, , texts, images] = parts;
  return [
    ["pages", pages],
    ["size", `${Number(bytes).toLocaleString("en")} bytes`],
    ["text", `${texts} characters`],
    ["page images", images],
    ["source", source],
  ];
}

export function factsByDocument(answer) {
  // The answer's per-document lines, by document number (1-based).
  const facts = new Map();
  for (const line of answer.split("\n")) {
    const match = /^document (\d+): (.*)$/.exec(line);
    if (match) facts.set(Number(match[1]), documentFacts(match[2]));
  }
  return facts;
}

export function showFacts(target, facts) {
  const list = document.createElement("dl");
  list.className = "pairs";
  for (const [term, value] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
  target.replaceChildren(list);
  target.dataset.state = "done";
}
