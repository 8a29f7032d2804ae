import * as providers from "@ai-sdk/openai";
import * as ai from "ai";

import { main } from "../vercel_ai_documents.mjs";

// A tool's file result, as v6 spells it.
const toolFile = (data, filename) => ({ type: "file-data", data, mediaType: "application/pdf", filename });

await main(ai, providers, toolFile);
