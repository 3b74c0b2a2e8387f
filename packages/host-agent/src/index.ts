export { type AgentConfig, AgentConfigSchema, agentConfigFromEnv, parseAgentConfig } from "./config.js";
export { AGENT_VERSION, createHostAgent, type HostAgent, probeAccelFromConfig } from "./create-agent.js";
export { fromConnectError, toConnectError, WRENN_ERROR_CODE_HEADER } from "./rpc/connect-errors.js";
