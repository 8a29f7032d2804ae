// Server-sent events read by hand from a fetch response, as the WHATWG spec parses them:
// `data:` lines joined by newlines, comments (`: keepalive`) reported, a blank line ends an event.

export async function readEvents(body, onData, onComment) {
  // Returns true when `onData` ended the stream by returning false, false when the body ended.
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    // A "\r" at the very end may be half of a "\r\n": it waits for the next piece.
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length && onData(data.join("\n")) === false) {
          await reader.cancel();
          return true;
        }
        data = [];
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) {
        onComment(line.slice(1).trim());
        continue;
      }
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1);
      if (field === "data") data.push(text.startsWith(" ") ? text.slice(1) : text);
    }
  }
}
