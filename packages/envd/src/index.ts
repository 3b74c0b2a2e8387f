export { type EnvdConfig, EnvdConfigSchema, parseEnvdConfig } from "./config.js";
export { createEnvd, type Envd } from "./create-envd.js";
