import * as providers from "@ai-sdk/openai";
import * as ai from "ai";

import { main } from "../vercel_ai_documents.mjs";

// A tool's file result, as v7 spells it.
const toolFile = (data, filename) => ({
  type: "file",
  mediaType: "application/pdf",
  data: { type: "data", data },
  filename,
});

await main(ai, providers, toolFile);
