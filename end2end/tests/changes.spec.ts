import { expect, test } from "@playwright/test";
import { hydrated, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

test("an author edits and deletes; another person sees both live and after a reload without JavaScript", async ({ browser }) => {
  const room = uniqueRoom("changes");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await say(ada.page, "Helo everyone");
  await say(ada.page, "This one goes away");
  await expect(messageWith(bob.page, "This one goes away")).toBeVisible();

  // Edit through the message's menu, by keyboard.
  const typo = messageWith(ada.page, "Helo everyone");
  await typo.getByRole("button", { name: /Actions for message/ }).click();
  await ada.page.getByRole("button", { name: "Edit", exact: true }).click();
  const editor = ada.page.getByLabel("Edit message");
  await expect(editor).toBeFocused();
  await editor.fill("Hello everyone");
  await ada.page.screenshot({ path: "test-results/changes-editing.png" });
  await editor.press("Enter");
  const fixed = messageWith(bob.page, "Hello everyone");
  await expect(fixed).toBeVisible();
  await expect(fixed.getByText("(edited)")).toBeVisible();
  await expect(bob.page.getByText("Helo everyone")).toHaveCount(0);

  // Delete, confirming.
  ada.page.once("dialog", (dialog) => dialog.accept());
  const gone = messageWith(ada.page, "This one goes away");
  await gone.getByRole("button", { name: /Actions for message/ }).click();
  await ada.page.screenshot({ path: "test-results/changes-menu.png" });
  await ada.page.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(bob.page.getByText("This one goes away")).toHaveCount(0);
  await expect(bob.page.locator("li.msg.deleted", { hasText: "Message deleted" })).toBeVisible();
  // Bob cannot change Ada's messages: no menu on them.
  await expect(fixed.getByRole("button", { name: /Actions for message/ })).toHaveCount(0);
  await bob.page.screenshot({ path: "test-results/changes-live.png" });

  // A reader without JavaScript gets the same from the server.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const page = await plain.newPage();
  await page.goto(`/r/${room}`);
  await expect(page.locator("li.msg", { hasText: "Hello everyone" }).getByText("(edited)")).toBeVisible();
  await expect(page.getByText("Message deleted")).toBeVisible();
  await expect(page.getByText("This one goes away")).toHaveCount(0);
  await expect(page.getByText("Helo everyone")).toHaveCount(0);
  await page.screenshot({ path: "test-results/changes-no-js.png" });

  // And after a reload with JavaScript, the page says the same.
  await bob.page.reload();
  await hydrated(bob.page);
  await expect(messageWith(bob.page, "Hello everyone").getByText("(edited)")).toBeVisible();
  await expect(bob.page.getByText("Message deleted")).toBeVisible();
  await Promise.all([ada.context.close(), bob.context.close(), plain.close()]);
});

test("in slow mode the composer counts down and the next message goes out by itself", async ({ browser }) => {
  const owner = await browser.newContext();
  const page = await owner.newPage();
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Your name").fill("Host");
  await page.getByRole("button", { name: "Create a private room" }).click();
  await expect(page.getByRole("status")).toHaveText(/Connected/);
  await page.getByText("Room settings").click();
  await page.getByLabel(/Slow mode/).fill("5");
  await page.getByRole("button", { name: "Save rules" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();

  const guest = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const other = await guest.newPage();
  await other.goto(page.url());
  await hydrated(other);
  await other.getByLabel("Choose a name to join").fill("Quick");
  await other.getByRole("button", { name: "Join" }).click();
  await expect(other.getByText("Slow mode: one message every 5 s.")).toBeVisible();
  await say(other, "first");
  await say(other, "second, right away");
  await expect(other.getByText(/Slow mode: your next message goes out in [1-5] s\./)).toBeVisible();
  await other.screenshot({ path: "test-results/slow-mode-phone-dark.png" });
  await expect(messageWith(page, "first")).toBeVisible();
  await expect(messageWith(page, "second, right away")).toBeVisible({ timeout: 15_000 });
  await Promise.all([owner.close(), guest.close()]);
});
