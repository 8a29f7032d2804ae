// The Vercel AI SDK's default OpenAI model (the Responses API) against the gateway:
// generateText with a data-URI image, streamText with an image URL. Prints what it got as JSON.
// Usage: node ai-v<N>/run.mjs <gateway base URL> <model> <data URI> <image URL>

export async function main(ai, providers) {
  const [baseURL, model, dataUri, imageUrl] = process.argv.slice(2);
  const openai = providers.createOpenAI({ baseURL: `${baseURL}/v1`, apiKey: "test" });
  const ask = (image) => [
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this image?" },
        { type: "file", mediaType: "image/png", data: image },
      ],
    },
  ];

  const generated = await ai.generateText({ model: openai(model), messages: ask(dataUri) });

  const errors = [];
  const streamed = ai.streamText({
    model: openai(model),
    messages: ask(new URL(imageUrl)),
    onError: ({ error }) => errors.push(String(error)),
  });
  const deltas = [];
  for await (const delta of streamed.textStream) deltas.push(delta);
  const usage = await streamed.usage;

  console.log(
    JSON.stringify({
      generated: generated.text,
      generatedUsage: generated.usage,
      deltas,
      streamedText: await streamed.text,
      streamedUsage: usage,
      errors,
    }),
  );
}
