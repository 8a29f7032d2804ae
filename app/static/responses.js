// The Responses API side of the playground: the request in its form, and its answer read back
// (the `response` object, or the stream's events) in the same shape the chat side uses.

export const CHAT = "chat";
export const RESPONSES = "responses";

export const PATHS = { [CHAT]: "chat/completions", [RESPONSES]: "responses" };

export function responsesBody(chat) {
  // The chat body the page builds, as the same request to /v1/responses.
  const parts = chat.messages[0].content.map((part) => {
    if (part.type === "text") return { type: "input_text", text: part.text };
    if (part.type === "file") return { type: "input_file", ...part.file };
    return { type: "input_image", image_url: part.image_url.url, detail: part.image_url.detail };
  });
  const body = { model: chat.model, input: [{ role: "user", content: parts }] };
  if (chat.max_tokens) body.max_output_tokens = chat.max_tokens;
  if (chat.stream) body.stream = true;
  return body;
}

function usageOf(response) {
  const usage = response.usage;
  if (!usage) return null;
  return {
    prompt_tokens: usage.input_tokens,
    completion_tokens: usage.output_tokens,
    total_tokens: usage.total_tokens,
  };
}

function statusNote(response) {
  const reason = response.incomplete_details?.reason;
  return response.status === "incomplete" ? `incomplete: ${reason || "cut short"}` : "";
}

export function responseText(response) {
  // The text of a `response` object's message items (what the SDKs call `output_text`).
  return response.output
    .filter((item) => item.type === "message")
    .flatMap((item) => item.content)
    .filter((part) => part.type === "output_text")
    .map((part) => part.text)
    .join("");
}

export function readResponse(response) {
  return { text: responseText(response), usage: usageOf(response), note: statusNote(response) };
}

export function responsesEvent(data) {
  // One event of a Responses stream as {text, usage, error, done, note}: text deltas, the
  // final usage, and the end (completed, incomplete, or an `error` event / a failed response).
  const event = JSON.parse(data);
  switch (event.type) {
    case "response.output_text.delta":
      return { text: event.delta };
    case "error":
      return { error: { type: "error event", code: event.code, param: event.param, message: event.message } };
    case "response.failed":
      return { error: event.response.error || { message: "The response failed." } };
    case "response.completed":
    case "response.incomplete":
      return { done: true, usage: usageOf(event.response), note: statusNote(event.response) };
    default:
      return {};
  }
}

export function chatEvent(data) {
  // One chat completion chunk in the same shape; `[DONE]` ends the stream.
  if (data === "[DONE]") return { done: true };
  const chunk = JSON.parse(data);
  if (chunk.error) return { error: chunk.error };
  return { usage: chunk.usage, text: chunk.choices.map((choice) => choice.delta.content || "").join("") };
}
