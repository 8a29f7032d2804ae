// The Vercel AI SDK with a PDF, against the gateway: a user's file part through the default
// openai(model) (the Responses API) and through openai.chat(model), and a tool loop whose tool
// returns the PDF. Prints what it got as JSON.
// Usage: node ai-v<N>/documents.mjs <gateway base URL> <model> <PDF as base64>

export async function main(ai, providers, toolFile) {
  const [baseURL, model, pdf] = process.argv.slice(2);
  const openai = providers.createOpenAI({ baseURL: `${baseURL}/v1`, apiKey: "test" });
  const messages = [
    {
      role: "user",
      content: [
        { type: "text", text: "What is the total due?" },
        { type: "file", mediaType: "application/pdf", data: pdf, filename: "report.pdf" },
      ],
    },
  ];

  const responses = await ai.generateText({ model: openai(model), messages });
  const chat = await ai.generateText({ model: openai.chat(model), messages });

  const tools = {
    fetch_invoice: ai.tool({
      description: "Fetch the customer's latest invoice",
      inputSchema: ai.jsonSchema({ type: "object", properties: {} }),
      execute: async () => "the invoice",
      toModelOutput: () => ({
        type: "content",
        value: [{ type: "text", text: "The invoice is attached." }, toolFile(pdf, "invoice.pdf")],
      }),
    }),
  };
  const loop = await ai.generateText({
    model: openai(model),
    tools,
    stopWhen: ai.stepCountIs(3),
    prompt: "Fetch the latest invoice and tell me its total.",
  });

  console.log(
    JSON.stringify({
      responses: responses.text,
      chat: chat.text,
      loop: loop.text,
      steps: loop.steps.length,
    }),
  );
}
