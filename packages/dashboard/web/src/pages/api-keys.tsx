import { Page } from "../components/page.js";
import type { PageProps } from "../routes.js";

// PLACEHOLDER: replaced by the page's real implementation.
export function ApiKeysPage(_props: PageProps) {
  return <Page title="API keys">{null}</Page>;
}
