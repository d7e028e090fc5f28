"""The playground and the docs page in a real browser: Debian's chromium,
driven headless over WebDriver (Debian's chromedriver; nothing is
downloaded), against a running chanx example that serves both pages.

Usage:
    python pages.py http://127.0.0.1:PORT [--screenshots DIR]
    python pages.py http://127.0.0.1:PORT --topics

With `--topics`, against the `topics` example: opens a pane on the hub's
`discussion:{pk}` topic with pk 5, subscribes and posts a reply from it:
every frame it sends carries the topic, and the log shows the replies
stamped with it.

Against the `chat` example: connects alice and bob to `lobby` from one
playground page, sends `new_chat_message` from alice's pane and sees
`chat_message` in bob's; checks that invalid JSON and a payload missing a
required field are refused inline with nothing sent; links a reply to its
request by `ref`; checks labels, the 360 px layout and the command line;
loads the docs page and finds every message of the document. Fails on any
console error and on any request to a host other than the app.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

# Selenium Manager must never fetch a browser or a driver.
os.environ["SE_OFFLINE"] = "true"

BASE = sys.argv[1].rstrip("/")
SCREENSHOTS = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None
HOST = urllib.parse.urlsplit(BASE).netloc


def fail(what):
    raise SystemExit(f"FAIL {what}")


def check(condition, what):
    if not condition:
        fail(what)
    print(f"ok   {what}")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--hide-scrollbars"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, seconds=10):
    return WebDriverWait(driver, seconds)


def set_text(driver, element, text):
    # Replaces the editor's content the way a user does: select all, type.
    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    driver.execute_script("arguments[0].value = arguments[1];", element, text)


def frames(pane, direction=None, action=None):
    selector = "ol.log li.frame"
    if direction:
        selector += f'[data-direction="{direction}"]'
    if action:
        selector += f'[data-action="{action}"]'
    return pane.find_elements(By.CSS_SELECTOR, selector)


def connect(driver, room, token):
    form = driver.find_element(By.CSS_SELECTOR, 'form[data-channel="chat"]')
    room_input = form.find_element(By.NAME, "param:room")
    token_input = form.find_element(By.NAME, "query:token")
    room_input.clear()
    room_input.send_keys(room)
    token_input.clear()
    token_input.send_keys(token)
    before = len(driver.find_elements(By.CSS_SELECTOR, "section.pane"))
    # The keyboard way: Enter in the form submits it.
    token_input.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.pane")) == before + 1)
    pane = driver.find_elements(By.CSS_SELECTOR, "section.pane")[-1]
    wait(driver).until(lambda d: pane.get_attribute("data-state") == "open")
    wait(driver).until(lambda d: frames(pane, "in", "authentication"))
    return pane


def unlabelled_controls(driver):
    return driver.execute_script(
        """
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter((control) => !control.hidden && control.type !== 'hidden')
          .filter((control) => {
            if (control.labels && control.labels.length) return false;
            if (control.getAttribute('aria-label')) return false;
            if (control.tagName === 'BUTTON' && control.textContent.trim()) return false;
            return true;
          })
          .map((control) => control.outerHTML.slice(0, 80));
        """
    )


def playground(driver):
    driver.get(f"{BASE}/playground")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, 'form[data-channel="chat"]')))
    channel = driver.find_element(By.CSS_SELECTOR, 'article.channel[data-channel="chat"]')
    check("/ws/chat/{room}" in channel.text, "the channel is listed with its address")
    check("token" in channel.text.lower() and "Authentication:" in channel.text, "its security scheme is shown")
    check(unlabelled_controls(driver) == [], "every control of the channel list has a label")

    alice = connect(driver, "lobby", "alice-token")
    bob = connect(driver, "lobby", "bob-token")
    check(len(driver.find_elements(By.CSS_SELECTOR, "section.pane")) == 2, "two connections side by side")
    auth = frames(alice, "in", "authentication")[0]
    check("200" in auth.text and "ok" in auth.get_attribute("class"), "the authentication frame is shown as a success")
    check(unlabelled_controls(driver) == [], "every control of the panes has a label")

    # The composer is pre-filled with the example frame of the message.
    select = Select(alice.find_element(By.NAME, "message"))
    select.select_by_visible_text("new_chat_message")
    editor = alice.find_element(By.NAME, "frame")
    prefilled = json.loads(editor.get_attribute("value"))
    check(prefilled["action"] == "new_chat_message" and "message" in prefilled["payload"], "the editor holds the message's example")

    set_text(driver, editor, json.dumps({"action": "new_chat_message", "payload": {"message": "hello from alice"}}))
    alice.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    wait(driver).until(lambda d: any("hello from alice" in item.get_attribute("textContent") for item in frames(bob, "in", "chat_message")))
    said = frames(bob, "in", "chat_message")[-1]
    body = json.loads(said.find_element(By.CSS_SELECTOR, "pre.json").get_attribute("textContent"))
    check(body["payload"] == {"sender": "alice", "room": "lobby", "message": "hello from alice"}, "bob's pane shows alice's chat_message")
    if SCREENSHOTS:
        driver.set_window_size(1280, 1400)
        driver.save_screenshot(os.path.join(SCREENSHOTS, "playground.png"))
        driver.set_window_size(1280, 900)

    sent_before = len(frames(alice, "out"))
    bob_before = len(frames(bob, "in"))
    set_text(driver, editor, '{"action": "new_chat_message", "payload": {')
    alice.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    errors = alice.find_elements(By.CSS_SELECTOR, "ul.errors li")
    check(errors and errors[0].text.startswith("Invalid JSON"), "invalid JSON is refused inline")
    check(editor.get_attribute("aria-invalid") == "true", "the editor is marked invalid")

    set_text(driver, editor, json.dumps({"action": "new_chat_message", "payload": {}}))
    alice.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    errors = [item.text for item in alice.find_elements(By.CSS_SELECTOR, "ul.errors li")]
    check(errors == ["payload.message is required"], f"a missing field is named inline ({errors})")

    set_text(driver, editor, json.dumps({"action": "new_chat_message", "payload": {"message": 5}}))
    alice.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    errors = [item.text for item in alice.find_elements(By.CSS_SELECTOR, "ul.errors li")]
    check(errors == ["payload.message must be string, not integer"], f"a wrong type is named inline ({errors})")
    bob_after = len(frames(bob, "in"))
    check(len(frames(alice, "out")) == sent_before and bob_after == bob_before, "nothing was sent for the refused frames")

    # A request and its reply are linked by `ref`.
    select.select_by_visible_text("ping")
    alice.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    wait(driver).until(lambda d: frames(alice, "in", "pong"))
    pong = frames(alice, "in", "pong")[-1]
    ping = frames(alice, "out", "ping")[-1]
    link = pong.find_element(By.CSS_SELECTOR, "a.reply-link")
    check(link.get_attribute("href").endswith("#" + ping.get_attribute("id")), "the pong links to its ping by ref")

    alice.find_element(By.CSS_SELECTOR, 'button[data-act="copy"]').click()
    command = alice.find_element(By.CSS_SELECTOR, "textarea.command").get_attribute("value")
    url = f"ws://{HOST}/ws/chat/lobby?token=alice-token"
    check(command == f"websocat '{url}'\npython -m websockets '{url}'", "the connection copies as a command line")

    bob.find_element(By.CSS_SELECTOR, 'button[data-act="disconnect"]').click()
    wait(driver).until(lambda d: bob.get_attribute("data-state") == "closed")
    check("closed 1000" in bob.find_element(By.CSS_SELECTOR, ".state").text, "the close code is shown")

    driver.set_window_size(360, 800)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    check(width <= 360, f"no horizontal scrolling at 360 px ({width})")
    driver.set_window_size(1280, 900)


def docs(driver):
    with urllib.request.urlopen(f"{BASE}/asyncapi.json") as response:
        document = json.load(response)
    driver.get(f"{BASE}/asyncapi")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "article.message")))
    for channel_id, channel in document["channels"].items():
        section = driver.find_element(By.CSS_SELECTOR, f'section.channel-doc[data-channel="{channel_id}"]')
        shown = {item.get_attribute("data-message") for item in section.find_elements(By.CSS_SELECTOR, "article.message")}
        check(shown == set(channel["messages"]), f"the docs page shows every message of {channel_id}")
    new_message = driver.find_element(By.CSS_SELECTOR, 'article.message[data-message="new_chat_message"]')
    rows = [row.text for row in new_message.find_elements(By.CSS_SELECTOR, "table.schema tbody tr")]
    check(any(row.startswith("message string yes") for row in rows), f"its schema is a table ({rows})")
    try_it = new_message.find_element(By.CSS_SELECTOR, "a.try")
    check("channel=chat" in try_it.get_attribute("href") and "message=new_chat_message" in try_it.get_attribute("href"), "it links to the playground")
    if SCREENSHOTS:
        driver.save_screenshot(os.path.join(SCREENSHOTS, "docs-page.png"))
    try_it.click()
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, 'form[data-channel="chat"]')))
    check(driver.current_url.startswith(f"{BASE}/playground#"), "try it opens the playground")


def topics(driver):
    driver.get(f"{BASE}/playground")
    selector = 'form[data-channel="hub_discussion_topic"]'
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, selector)))
    channel = driver.find_element(By.CSS_SELECTOR, 'article.channel[data-channel="hub_discussion_topic"]')
    check("discussion:{pk}" in channel.text, "the topic is listed with its pattern")
    check(unlabelled_controls(driver) == [], "every control of the channel list has a label")
    form = driver.find_element(By.CSS_SELECTOR, selector)
    pk = form.find_element(By.NAME, "topic:pk")
    pk.send_keys("5")
    pk.send_keys(Keys.ENTER)
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.pane"))
    pane = driver.find_elements(By.CSS_SELECTOR, "section.pane")[-1]
    wait(driver).until(lambda d: pane.get_attribute("data-state") == "open")
    check(pane.find_element(By.CSS_SELECTOR, "code[data-topic]").text == "discussion:5", "the pane addresses discussion:5")

    select = Select(pane.find_element(By.NAME, "message"))
    editor = pane.find_element(By.NAME, "frame")
    select.select_by_visible_text("subscribe")
    pane.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    wait(driver).until(lambda d: frames(pane, "in", "subscribed"))
    sent = json.loads(frames(pane, "out", "subscribe")[-1].find_element(By.CSS_SELECTOR, "pre").text)
    check(sent["topic"] == "discussion:5" and sent["version"] == 1, "the subscribe frame carries the topic")
    subscribed = frames(pane, "in", "subscribed")[-1]
    check("topic discussion:5" in subscribed.text, "the confirmation is shown with its topic")

    select.select_by_visible_text("reply")
    set_text(driver, editor, json.dumps({"action": "reply", "payload": "hi"}))
    pane.find_element(By.CSS_SELECTOR, 'button[data-act="send"]').click()
    wait(driver).until(lambda d: frames(pane, "in", "reply_created"))
    created = json.loads(frames(pane, "in", "reply_created")[-1].find_element(By.CSS_SELECTOR, "pre").text)
    check(created["payload"] == "hi on 5" and created["topic"] == "discussion:5", "the topic's reply arrives in the pane")
    check(frames(pane, "in", "reply_created")[-1].find_elements(By.CSS_SELECTOR, ".reply-link"), "the reply is linked to its request")


def main():
    driver = browser()
    try:
        if "--topics" in sys.argv:
            topics(driver)
        else:
            playground(driver)
            docs(driver)
        console = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        check(console == [], f"no console errors or warnings ({console})")
        hosts = set()
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
                url = message["params"].get("request", {}).get("url") or message["params"].get("url")
                if url and not url.startswith("data:"):
                    hosts.add(urllib.parse.urlsplit(url).netloc)
        check(hosts == {HOST}, f"every request went to the app ({sorted(hosts)})")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
