import { expect, test } from "@playwright/test";
import { STRICT_PORT } from "../playwright.config";
import { hydrated, messageWith, say, uniqueRoom } from "./helpers";

test("someone who types faster than the rate limit is told to wait, and nothing they typed is lost", async ({ browser }) => {
  const room = uniqueRoom("limit");
  const context = await browser.newContext();
  const page = await context.newPage();
  const violations: string[] = [];
  page.on("console", (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(`http://127.0.0.1:${STRICT_PORT}/`);
  await hydrated(page);
  await page.getByLabel("Your name").fill("Quick");
  await page.getByLabel("Room", { exact: true }).fill(room);
  await page.getByRole("button", { name: "Join room" }).click();
  await expect(page.getByRole("status")).toHaveText(/Connected/);

  // A burst of 3 is allowed; the next two wait for the steady rate (one per 2 s).
  for (let i = 1; i <= 5; i++) await say(page, `fast ${i}`);
  await expect(page.locator("#composer-notice")).toHaveText(/sending too fast/i);
  await expect(page.locator("li.msg.pending.queued").first()).toContainText("Waiting to send");
  await page.screenshot({ path: "test-results/limited-waiting.png" });

  // Each is sent in the end, once, in the order typed, and the notice goes away.
  for (let i = 1; i <= 5; i++) await expect(messageWith(page, `fast ${i}`)).toHaveCount(1, { timeout: 15_000 });
  await expect(page.locator("li.msg.pending")).toHaveCount(0);
  const texts = await page.locator("li.msg .text").allTextContents();
  expect(texts.filter((t) => t.startsWith("fast "))).toEqual(["fast 1", "fast 2", "fast 3", "fast 4", "fast 5"]);
  await expect(page.locator("#composer-notice")).toHaveText("");
  expect(violations).toEqual([]);
  await page.screenshot({ path: "test-results/limited-done.png" });
  await context.close();
});
