// The Vercel AI SDK's default OpenAI model (the Responses API, `store` on) against the gateway
// over several turns, as its users write them: turns built from the previous turn's
// `response.messages`, and tool loops whose first step writes text before it calls a tool.
// Both send the earlier assistant output back as `item_reference` items. Prints what each
// turn answered, and the request bodies the SDK sent, as JSON.
// Usage: node ai-v<N>/turns.mjs <gateway base URL> <model>

export async function main(ai, providers) {
  const [baseURL, model] = process.argv.slice(2);
  const sent = [];
  const recording = async (url, init) => {
    sent.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  const openai = providers.createOpenAI({ baseURL: `${baseURL}/v1`, apiKey: "test", fetch: recording });
  const steps = ai.isStepCount ?? ai.stepCountIs;

  // A conversation: streamed first turn, then two generated ones, each from the last one's
  // response messages.
  const question = [{ role: "user", content: "What is in this image?" }];
  const first = ai.streamText({ model: openai(model), messages: question });
  const firstText = await first.text;
  const afterFirst = [...question, ...(await first.response).messages];
  const colour = [...afterFirst, { role: "user", content: "And its colour?" }];
  const second = await ai.generateText({ model: openai(model), messages: colour });
  const thanks = [...colour, ...second.response.messages, { role: "user", content: "Thanks." }];
  const third = await ai.generateText({ model: openai(model), messages: thanks });

  // Tool loops, generated and streamed: step 1 writes text and calls the tool, step 2 answers.
  const called = [];
  const weather = ai.tool({
    description: "The weather in a city.",
    inputSchema: ai.jsonSchema({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    }),
    execute: async ({ city }) => {
      called.push(city);
      return `sunny in ${city}`;
    },
  });
  const loop = {
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
    tools: { weather },
    stopWhen: steps(2),
  };
  const generatedLoop = await ai.generateText({ model: openai(model), ...loop });
  const streamedLoop = ai.streamText({ model: openai(model), ...loop });
  const streamedLoopText = await streamedLoop.text;

  console.log(
    JSON.stringify({
      texts: [firstText, second.text, third.text],
      generatedLoop: { text: generatedLoop.text, steps: generatedLoop.steps.length },
      streamedLoop: { text: streamedLoopText, steps: (await streamedLoop.steps).length },
      called,
      sent,
    }),
  );
}
