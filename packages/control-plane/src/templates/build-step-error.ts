import { WrennError } from "@wrenn/shared";

/** A build that failed at a step: which one, and why (the command's exit code and output tail). */
export class BuildFailure extends WrennError {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super("failed_precondition", message);
  }
}
