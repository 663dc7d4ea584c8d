import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { NODE_PORTS } from "../playwright.config";
import { answers, hydrated, joinThroughHome, messageWith, say, start, uniqueRoom } from "./helpers";

test("a room that keeps only its newest messages says so where its history starts", async ({ browser }) => {
  // A server of its own keeping each room's newest three messages.
  const port = NODE_PORTS[1] + 96;
  const origin = `http://127.0.0.1:${port}`;
  const server = await start(
    "target/debug/server",
    [],
    {
      PALAVER_BIND: `127.0.0.1:${port}`,
      PALAVER_DATA_DIR: mkdtempSync(join(tmpdir(), "palaver-e2e-retention-")),
      PALAVER_RETAIN_MESSAGES: "3",
      RUST_LOG: "warn",
    },
    answers(`${origin}/readyz`),
  );
  try {
    const room = uniqueRoom("kept");
    const ada = await joinThroughHome(browser, "Ada", room, origin);
    for (let i = 1; i <= 5; i++) {
      await say(ada.page, `note ${i}`);
      await expect(messageWith(ada.page, `note ${i}`)).toBeVisible();
    }

    // Bo arrives later: the last three, and a plain line where the rest was.
    for (const [label, viewport, scheme] of [
      ["desktop", { width: 1280, height: 800 }, "light"],
      ["phone-dark", { width: 390, height: 844 }, "dark"],
    ] as const) {
      const bo = await browser.newContext({ viewport, colorScheme: scheme });
      const page = await bo.newPage();
      await page.goto(`${origin}/r/${room}`);
      await hydrated(page);
      await expect(page.getByText(`Earlier messages in #${room} are no longer kept by this server.`)).toBeVisible();
      await expect(page.locator("li.msg")).toHaveText([/note 3/, /note 4/, /note 5/]);
      await expect(page.getByRole("button", { name: "Load older messages" })).toHaveCount(0);
      await expect(page.getByText("No messages yet")).toHaveCount(0);
      await page.screenshot({ path: `test-results/retention-${label}.png` });
      await bo.close();
    }
    await ada.context.close();
  } finally {
    server.kill("SIGKILL");
  }
});
