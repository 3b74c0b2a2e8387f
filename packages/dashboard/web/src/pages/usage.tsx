import { Page } from "../components/page.js";
import type { PageProps } from "../routes.js";

// PLACEHOLDER: replaced by the page's real implementation.
export function UsagePage(_props: PageProps) {
  return <Page title="Usage">{null}</Page>;
}
