import type { HttpRoute } from "./http-route.js";

const healthRoute: HttpRoute = {
  method: "GET",
  path: "/health",
  public: true,
  async handle(_req, res) {
    res.writeHead(204).end();
  },
};

/** Every plain-HTTP route envd serves. */
export function createHttpRoutes(): HttpRoute[] {
  return [healthRoute];
}
