export { type AgentConfig, AgentConfigSchema, agentConfigFromEnv, parseAgentConfig } from "./config.js";
export { AGENT_VERSION, createHostAgent, type HostAgent, probeAccelFromConfig } from "./create-agent.js";
