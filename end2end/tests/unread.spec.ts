import { Page, expect, test } from "@playwright/test";
import { hydrated, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

/** Makes the page believe it is hidden (another tab in front) or visible again. */
async function setHidden(page: Page, hidden: boolean) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
  }, hidden);
}

test("while the page is hidden the title counts what arrives and marks a mention; coming back shows where", async ({ browser }) => {
  const room = uniqueRoom("unread");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await say(ada.page, "before you went");
  await expect(messageWith(bob.page, "before you went")).toBeVisible();
  await expect(bob.page).toHaveTitle(`#${room} · Palaver`);

  await setHidden(bob.page, true);
  await say(ada.page, "one");
  await say(ada.page, "two");
  await expect(bob.page).toHaveTitle(`(2) #${room} · Palaver`);
  await say(ada.page, "hey @bob, look");
  await expect(bob.page).toHaveTitle(`(@3) #${room} · Palaver`);
  await expect(messageWith(bob.page, "hey @bob")).toHaveClass(/mention/);
  await expect(messageWith(ada.page, "hey @bob")).not.toHaveClass(/mention/);

  await setHidden(bob.page, false);
  await expect(bob.page).toHaveTitle(`#${room} · Palaver`);
  const line = bob.page.locator("li.new-since", { hasText: "New since you left" });
  await expect(line).toBeVisible();
  // The line sits right above the first message that arrived while away.
  const after = await bob.page.locator("li.new-since + li").textContent();
  expect(after).toContain("one");
  await bob.page.screenshot({ path: "test-results/unread-back.png" });

  // Reloading later: what this browser read is remembered, so no line for what was read.
  await bob.page.reload();
  await hydrated(bob.page);
  await expect(bob.page.getByRole("status").first()).toHaveText(/Connected/);
  await expect(bob.page.locator("li.new-since", { hasText: "New since you left" })).toHaveCount(0);

  // Away from the room (page closed), two more arrive: the line is at the first of them.
  await bob.page.setViewportSize({ width: 390, height: 520 });
  await bob.page.goto("/");
  await say(ada.page, "while you were gone");
  for (let i = 1; i <= 8; i++) await say(ada.page, `and this ${i}`);
  await expect(messageWith(ada.page, "and this 8")).toBeVisible();
  await bob.page.goto(`/r/${room}`);
  await hydrated(bob.page);
  await expect(bob.page.locator("li.new-since + li")).toContainText("while you were gone");
  // The line is above what fits on the screen: a button jumps to it.
  await bob.page.screenshot({ path: "test-results/unread-jump.png" });
  await bob.page.getByRole("button", { name: "↑ New since you left" }).click();
  await expect(bob.page.locator("li.new-since")).toBeInViewport();
  await Promise.all([ada.context.close(), bob.context.close()]);
});

test("@ completes a name from the room, by keyboard, and the mention is highlighted for them", async ({ browser }) => {
  const room = uniqueRoom("mention");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await expect(bob.page.locator("details.roster summary")).toHaveText("2 online");
  const box = bob.page.getByLabel("Message", { exact: true });
  await box.pressSequentially("thanks @a");
  const list = bob.page.getByRole("listbox", { name: "People to mention" });
  await expect(list.getByRole("option")).toHaveText(["@Ada"]);
  await expect(box).toHaveAttribute("aria-controls", "mention-list");
  await bob.page.screenshot({ path: "test-results/mention-completion.png" });
  await box.press("Enter");
  await expect(box).toHaveValue("thanks @Ada ");
  await expect(list).toHaveCount(0);
  await box.pressSequentially("for this");
  await box.press("Enter");
  await expect(messageWith(ada.page, "thanks @Ada for this")).toHaveClass(/mention/);
  await expect(messageWith(bob.page, "thanks @Ada for this")).not.toHaveClass(/mention/);
  // Escape closes the list without taking a name.
  await box.pressSequentially("@b");
  await expect(list).toHaveCount(0); // Bob is not offered himself
  await box.fill("");
  await box.pressSequentially("@");
  await expect(list.getByRole("option")).toHaveText(["@Ada"]);
  await box.press("Escape");
  await expect(list).toHaveCount(0);
  await Promise.all([ada.context.close(), bob.context.close()]);
});

test("typing is shown to the other person, and goes when it stops or the message arrives", async ({ browser }) => {
  const room = uniqueRoom("typing");
  const ada = await joinThroughHome(browser, "Ada", room);
  const bob = await joinThroughHome(browser, "Bob", room);
  await expect(bob.page.locator("details.roster summary")).toHaveText("2 online");
  const line = bob.page.locator("p.typing");
  await ada.page.getByLabel("Message", { exact: true }).pressSequentially("hel");
  await expect(line).toHaveText("Ada is typing…");
  await expect(ada.page.locator("p.typing")).toBeEmpty(); // not told of herself
  await bob.page.screenshot({ path: "test-results/typing.png" });
  // Stops typing: gone a few seconds later.
  await expect(line).toBeEmpty({ timeout: 10_000 });
  // Types and sends: gone when the message arrives.
  const box = ada.page.getByLabel("Message", { exact: true });
  await box.pressSequentially("lo");
  await expect(line).toHaveText("Ada is typing…");
  await box.press("Enter");
  await expect(messageWith(bob.page, "hello")).toBeVisible();
  await expect(line).toBeEmpty();
  await Promise.all([ada.context.close(), bob.context.close()]);
});
