import * as providers from "@ai-sdk/openai";
import * as ai from "ai";

import { main } from "../vercel_ai_turns.mjs";

await main(ai, providers);
