import { describe, expect, it } from "vitest";
import { maskedHost, trafficRefusal } from "../src/proxy/traffic-access.js";

const PRIVATE = { trafficAccessToken: "a".repeat(48), maskRequestHost: null };
const target = (port: number) => ({ sandboxId: "sbx1", port });

describe("traffic access", () => {
  it("lets anything reach a public sandbox", () => {
    expect(trafficRefusal({ trafficAccessToken: null, maskRequestHost: null }, target(8080), {})).toBeNull();
    expect(trafficRefusal(undefined, target(8080), {})).toBeNull();
  });

  it("wants a private sandbox's token on its ports, but not on envd's", () => {
    expect(trafficRefusal(PRIVATE, target(8080), {})).toMatch(/does not allow public traffic/);
    expect(trafficRefusal(PRIVATE, target(8080), { "e2b-traffic-access-token": "b".repeat(48) })).toMatch(
      /does not match/,
    );
    expect(trafficRefusal(PRIVATE, target(8080), { "e2b-traffic-access-token": "short" })).toMatch(
      /does not match/,
    );
    expect(trafficRefusal(PRIVATE, target(8080), { "e2b-traffic-access-token": "a".repeat(48) })).toBeNull();
    expect(trafficRefusal(PRIVATE, target(49983), {})).toBeNull();
  });

  it("masks the Host header with the target port", () => {
    expect(maskedHost({ trafficAccessToken: null, maskRequestHost: null }, 80)).toEqual({});
    expect(maskedHost({ trafficAccessToken: null, maskRequestHost: `localhost:$${"{PORT}"}` }, 3000)).toEqual(
      { host: "localhost:3000" },
    );
  });
});
