// The official openai Node SDK with a PDF, against the gateway: a chat `file` part and a
// Responses `input_file`, as the SDK's own types spell them. Prints the answers as JSON.
// Usage: node openai-js/documents.mjs <gateway base URL> <model> <PDF as base64>
import OpenAI from "openai";

const [baseURL, model, pdf] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "test" });
const dataUri = `data:application/pdf;base64,${pdf}`;

const completion = await client.chat.completions.create({
  model,
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "What is the total due?" },
        { type: "file", file: { filename: "report.pdf", file_data: dataUri } },
      ],
    },
  ],
});

const response = await client.responses.create({
  model,
  input: [
    {
      role: "user",
      content: [
        { type: "input_text", text: "What is the total due?" },
        { type: "input_file", filename: "report.pdf", file_data: dataUri },
      ],
    },
  ],
});

console.log(
  JSON.stringify({ chat: completion.choices[0].message.content, responses: response.output_text }),
);
