#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so no build step sits between an edit and a run.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
