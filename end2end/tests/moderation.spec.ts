import { execFileSync } from "node:child_process";
import { expect, test } from "@playwright/test";
import { AUTH_SECRET, NODE_PORTS } from "../playwright.config";
import { hydrated, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

const [nodeA, nodeB] = NODE_PORTS.map((port) => `http://127.0.0.1:${port}`);

/** A moderator's token, signed by the server's own command. */
function moderatorToken(): string {
  return execFileSync("target/debug/server", ["token", "--sub", "u-mod", "--name", "Mod", "--role", "moderator"], {
    cwd: "..",
    env: { ...process.env, PALAVER_AUTH_SECRET: AUTH_SECRET },
  })
    .toString()
    .trim();
}

/** Opens the menu of the message with `text` on `page`. */
async function menuOf(page: import("@playwright/test").Page, text: string) {
  await messageWith(page, text).getByRole("button", { name: /Actions for message/ }).click();
}

test("a moderator on another node deletes, mutes and bans a guest; the guest is told, and the audit log lists it all", async ({ browser }) => {
  const room = uniqueRoom("moderation");
  // A guest on node B posts.
  const gus = await joinThroughHome(browser, "Gus", room, nodeB);
  await say(gus.page, "buy cheap watches");
  await say(gus.page, "really cheap");
  await expect(messageWith(gus.page, "really cheap")).toBeVisible();

  // The moderator signs in on node A, on a phone in dark mode.
  const modContext = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true, hasTouch: true });
  const mod = await modContext.newPage();
  await mod.goto(`${nodeA}/signin#token=${moderatorToken()}&next=/r/${room}`);
  await expect(mod).toHaveURL(`${nodeA}/r/${room}`);
  await hydrated(mod);
  await expect(mod.getByRole("status").first()).toHaveText(/Connected/);
  await expect(gus.page.locator("details.roster summary")).toHaveText("2 online");

  // Delete one message: gone for Gus too.
  mod.once("dialog", (dialog) => dialog.accept());
  await menuOf(mod, "buy cheap watches");
  await mod.screenshot({ path: "test-results/moderation-menu-phone-dark.png" });
  await mod.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(gus.page.getByText("buy cheap watches")).toHaveCount(0);

  // Mute, by keyboard: the form's length and reason, then Mute.
  await menuOf(mod, "really cheap");
  await mod.getByRole("button", { name: "Mute…" }).click();
  const form = mod.getByRole("form", { name: "Mute Gus" });
  await form.getByLabel("For").selectOption({ label: "10 minutes" });
  await form.getByLabel("Reason (they will see it)").fill("no adverts");
  await mod.screenshot({ path: "test-results/moderation-mute-form-phone-dark.png" });
  await form.getByRole("button", { name: "Mute", exact: true }).press("Enter");
  await expect(mod.getByText("Gus is muted for 10 minutes.")).toBeVisible();
  const note = gus.page.locator(".muted-note");
  await expect(note).toContainText("A moderator muted you");
  await expect(note).toContainText("no adverts");
  await expect(gus.page.getByRole("button", { name: "Send" })).toBeDisabled();
  await gus.page.screenshot({ path: "test-results/moderation-muted.png" });

  // Ban: Gus is disconnected at once, told why, and cannot come back by reloading.
  await menuOf(mod, "really cheap");
  await mod.getByRole("button", { name: "Ban…" }).click();
  const ban = mod.getByRole("form", { name: "Ban Gus" });
  await ban.getByLabel("For").selectOption({ label: "1 hour" });
  await ban.getByRole("button", { name: "Ban", exact: true }).click();
  await expect(gus.page.getByRole("alert").filter({ hasText: "banned you from this room" })).toBeVisible();
  await gus.page.screenshot({ path: "test-results/moderation-banned.png" });
  await gus.page.reload();
  await hydrated(gus.page);
  await expect(gus.page.getByRole("alert").filter({ hasText: "banned you from this room" })).toBeVisible();

  // The panel: the ban and mute in force, and the audit log, newest first.
  await mod.getByText("Moderation", { exact: true }).click();
  const panel = mod.locator(".moderation-panel");
  await expect(panel.locator(".sanctions li")).toHaveCount(2);
  await expect(panel.locator(".sanctions li").first()).toContainText("Muted: Gus (guest");
  const audit = panel.locator(".audit li");
  await expect(audit).toHaveCount(3);
  await expect(audit.nth(0)).toContainText("Mod banned Gus");
  await expect(audit.nth(1)).toContainText("Mod muted Gus");
  await expect(audit.nth(1)).toContainText("no adverts");
  await expect(audit.nth(2)).toContainText("Mod deleted a message of Gus");
  await mod.screenshot({ path: "test-results/moderation-panel-phone-dark.png" });

  // Lifting the ban lets Gus back in (still muted).
  await panel.getByRole("button", { name: "Lift: Gus" }).last().click();
  await expect(mod.getByText("Gus may join again.")).toBeVisible();
  await gus.page.getByRole("button", { name: "Try again" }).click();
  await expect(gus.page.getByRole("status").first()).toHaveText(/Connected/);
  await expect(gus.page.locator(".muted-note")).toContainText("no adverts");
  await Promise.all([gus.context.close(), modContext.close()]);
});
