import { expect, test } from "@playwright/test";
import { hydrated } from "./helpers";

test("a private room's invite link goes on the clipboard, and a public room has no such button", async ({ browser }) => {
  const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Your name").fill("Host");
  await page.getByRole("button", { name: "Create a private room" }).click();
  await expect(page.getByRole("status").first()).toHaveText(/Connected/);

  // By keyboard: focus the button and press Enter.
  const copy = page.getByRole("button", { name: "Copy invite link" });
  await copy.focus();
  await copy.press("Enter");
  await expect(page.getByText("Invite link copied.")).toBeVisible();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toBe(page.url());
  expect(copied).toMatch(/\/r\/[0-9a-f]{64}$/);
  await page.screenshot({ path: "test-results/invite-copied.png" });

  // Someone opening the link lands in the same room.
  const guest = await browser.newContext();
  const other = await guest.newPage();
  await other.goto(copied);
  await hydrated(other);
  await expect(other.getByRole("heading", { name: "Private room" })).toBeVisible();

  await page.goto("/r/lobby");
  await hydrated(page);
  await expect(page.getByRole("button", { name: "Copy invite link" })).toHaveCount(0);
  await Promise.all([context.close(), guest.close()]);
});
