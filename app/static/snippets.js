// The request just made, as code to copy: a curl command and Python with the openai SDK, for
// either API (`api`: "chat" or "responses").
// `build(urlOf)` makes the request body with `urlOf(image)` as each image's URL, so that
// uploaded images are read from files of the same name instead of pasted in as base64.

function shellQuote(text) {
  return "'" + text.replace(/'/g, "'\\''") + "'";
}

const PATHS = { chat: "chat/completions", responses: "responses" };

export function curlSnippet(endpoint, build, needsKey, api = "chat") {
  const token = "@@image-" + Math.random().toString(36).slice(2) + "-";
  const files = [];
  const body = build((image) => {
    if (!image.file) return image.url;
    files.push(image);
    return token + (files.length - 1) + "@@";
  });
  // The body goes through an unquoted here-document, so that `$(base64 …)` runs in it.
  let json = JSON.stringify(body, null, 2).replace(/[\\$`]/g, (c) => "\\" + c);
  files.forEach((image, n) => {
    const read = `data:${image.mime};base64,$(base64 < ${shellQuote(image.name)} | tr -d '\\n')`;
    json = json.replace(token + n + "@@", read);
  });
  const lines = [`curl ${endpoint}/${PATHS[api]} \\`, '  -H "Content-Type: application/json" \\'];
  if (needsKey) lines.push('  -H "Authorization: Bearer $GATEWAY_KEY" \\');
  if (body.stream) lines.push("  --no-buffer \\");
  lines.push("  --data-binary @- <<JSON", json, "JSON");
  return lines.join("\n");
}


class PythonCode {
  constructor(code) {
    this.code = code;
  }
}

function python(value, pad) {
  const inner = pad + "    ";
  if (value instanceof PythonCode) return value.code;
  if (value === null || value === undefined) return "None";
  if (value === true || value === false) return value ? "True" : "False";
  if (Array.isArray(value)) {
    return "[\n" + value.map((item) => inner + python(item, inner) + ",\n").join("") + pad + "]";
  }
  if (typeof value === "object") {
    const items = Object.entries(value).map(
      ([key, item]) => `${inner}${JSON.stringify(key)}: ${python(item, inner)},\n`);
    return "{\n" + items.join("") + pad + "}";
  }
  return JSON.stringify(value); // JSON strings and numbers are valid Python literals
}

export function pythonSnippet(endpoint, build, needsKey, api = "chat") {
  let hasFiles = false;
  const body = build((image) => {
    if (!image.file) return image.url;
    hasFiles = true;
    return new PythonCode(`data_uri(${JSON.stringify(image.name)}, ${JSON.stringify(image.mime)})`);
  });
  const lines = hasFiles ? ["import base64", "import os", ""] : ["import os", ""];
  lines.push("from openai import OpenAI", "", "client = OpenAI(");
  lines.push(`    base_url=${JSON.stringify(endpoint)},`);
  lines.push(needsKey
    ? '    api_key=os.environ["GATEWAY_KEY"],'
    : '    api_key=os.environ.get("GATEWAY_KEY", "none"),  # this gateway needs no key');
  lines.push(")", "");
  if (hasFiles) {
    lines.push("", "def data_uri(path, mime):", '    with open(path, "rb") as file:');
    lines.push('        return f"data:{mime};base64,{base64.b64encode(file.read()).decode()}"', "", "");
  }
  const args = Object.entries(body).map(([key, value]) => `    ${key}=${python(value, "    ")},`);
  if (api === "responses") {
    lines.push(...responsesCall(body, args));
  } else if (body.stream) {
    lines.push("stream = client.chat.completions.create(", ...args, ")", "for chunk in stream:");
    lines.push("    for choice in chunk.choices:");
    lines.push('        print(choice.delta.content or "", end="", flush=True)', "print()");
  } else {
    lines.push("completion = client.chat.completions.create(", ...args, ")");
    lines.push("print(completion.choices[0].message.content)");
  }
  return lines.join("\n");
}

function responsesCall(body, args) {
  if (!body.stream) {
    return ["response = client.responses.create(", ...args, ")", "print(response.output_text)"];
  }
  return [
    "stream = client.responses.create(", ...args, ")", "for event in stream:",
    '    if event.type == "response.output_text.delta":',
    '        print(event.delta, end="", flush=True)', "print()",
  ];
}
