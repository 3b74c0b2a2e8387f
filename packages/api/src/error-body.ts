import { ERROR_CODES } from "@wrenn/shared/errors";
import { z } from "zod";

/** The body of every /v1 error answer. `code` is from the registry; clients keep unknown codes as sent. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string().describe(`one of ${ERROR_CODES.join(", ")}`),
    message: z.string(),
  }),
});
