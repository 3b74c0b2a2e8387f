import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HostAgentService } from "@wrenn/proto";

export type AgentClient = Client<typeof HostAgentService>;

/** A HostAgentService client for an agent on this machine, presenting its host token. */
export function agentClient(port: number, token: string): AgentClient {
  return createClient(
    HostAgentService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "2",
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}
