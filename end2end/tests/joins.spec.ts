import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { NODE_PORTS } from "../playwright.config";
import { answers, joinThroughHome, start, uniqueRoom } from "./helpers";

test("someone who opens connections too fast is told to wait, then gets in by itself", async ({ browser }) => {
  // A server of its own allowing two connections at once, then one every 10 s, per address
  // (long enough that a slow, busy CI machine still opens the third within the budget).
  const port = NODE_PORTS[1] + 95;
  const origin = `http://127.0.0.1:${port}`;
  const server = await start(
    "target/debug/server",
    [],
    {
      PALAVER_BIND: `127.0.0.1:${port}`,
      PALAVER_DATA_DIR: mkdtempSync(join(tmpdir(), "palaver-e2e-joins-")),
      PALAVER_JOIN_RATE_LIMIT_BURST: "2",
      PALAVER_JOIN_RATE_LIMIT_INTERVAL_MS: "10000",
      RUST_LOG: "warn",
    },
    answers(`${origin}/readyz`),
  );
  try {
    const room = uniqueRoom("door");
    const ada = await joinThroughHome(browser, "Ada", room, origin);
    const second = await ada.context.newPage();
    await second.goto(`${origin}/r/${room}`);
    await expect(second.getByRole("status")).toHaveText(/Connected/);

    // The third connection is over the budget: the tab says why, and how long it waits.
    const third = await ada.context.newPage();
    await third.goto(`${origin}/r/${room}`);
    const notice = third.locator("#composer-notice");
    await expect(notice).toContainText(/Too many connection attempts from your network\. Trying again in \d+ s\./);
    await expect(third.getByRole("status")).toHaveText(/Reconnecting/);
    await third.screenshot({ path: "test-results/joins-too-fast.png" });
    await expect(third.getByRole("status")).toHaveText(/Connected/, { timeout: 25_000 });
    await expect(notice).toBeEmpty();
    await ada.context.close();
  } finally {
    server.kill("SIGKILL");
  }
});
