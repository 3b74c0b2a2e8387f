#!/usr/bin/env node
// Runs the TypeScript entry through tsx so plain `node` (and `npx`) can start it.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
