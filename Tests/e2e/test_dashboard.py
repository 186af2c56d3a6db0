"""The dashboard in a real browser: headless Chromium (Debian) driven by selenium.

A hub runs with short presence deadlines; the page is opened and logged into first, and only
then does a simulator start two meters. The test checks that:

* the dashboard loads and the operator logs in with a token;
* a device that connects after the page loaded appears without a reload, within 2 s of the hub
  knowing it;
* a command sent from the console reaches the device, and its state and result appear;
* a presence change (the meters die) shows within 2 s of the hub declaring it.

Screenshots of the grid, a device page and the console (and the grid at phone width) are saved
in the test's artifacts directory.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time

from bcproc import Api, clean_env, line_buffered, running_hub, wait_for_log, wait_until

from selenium import webdriver  # installed by scripts/install-test-deps
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

TOKEN = "e2e-dashboard-operator-token-0123456789"


def browser(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--no-proxy-server"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def present(driver, css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def wait(what, check, **options):
    """`wait_until` for a condition on the page: an element re-rendered under the check (the page
    redraws rows and cards as events arrive) counts as "not yet", and the wait tries again."""
    def attempt():
        try:
            return check()
        except StaleElementReferenceException:
            return None
    return wait_until(what, attempt, **options)


def test_dashboard_live_grid_command_console_and_presence(backchannel_bin, artifacts):
    with running_hub(backchannel_bin, artifacts, TOKEN, "--poll-interval", "1", "--presence-grace", "2") as hub:
        api = Api(hub, TOKEN)
        driver = browser()
        sim = None
        try:
            # The page loads and asks for a token.
            driver.get(hub + "/")
            assert driver.title == "Backchannel"
            wait("the login form", lambda: present(driver, "#token"), timeout=10)
            driver.find_element(By.CSS_SELECTOR, "#token").send_keys(TOKEN)
            driver.find_element(By.CSS_SELECTOR, "#login").click()
            wait("the operator's name in the header",
                 lambda: "root" in driver.find_element(By.CSS_SELECTOR, "#who").text, timeout=10)
            assert present(driver, "[data-device]") is None  # no device yet

            # Meters start after the page loaded.
            with open(artifacts / "sim.log", "w") as out:
                sim = subprocess.Popen(
                    line_buffered([str(backchannel_bin), "simulate", "--hub", hub, "--devices", "2",
                                   "--state-dir", str(artifacts / "sim"), "--token", TOKEN,
                                   "--long-poll", "0", "--interval", "1", "--history", "1"]),
                    env=clean_env({"HOME": str(artifacts)}), stdout=out, stderr=subprocess.STDOUT)

            def heard_from():
                status, view = api.get("/v1/devices/meter-001/presence")
                return time.monotonic() if status == 200 and view["presence"].get("lastContactAt") else None
            known = wait_until("the hub heard from meter-001", heard_from, timeout=60, interval=0.05, proc=sim)
            wait("meter-001 in the grid without a reload",
                 lambda: present(driver, '[data-device="meter-001"]'), timeout=5, interval=0.05)
            assert time.monotonic() - known <= 2.0, "the new device took more than 2 s to appear"
            wait("meter-002 in the grid", lambda: present(driver, '[data-device="meter-002"]'), timeout=10)
            wait("meter-001 shown online",
                 lambda: present(driver, '[data-device="meter-001"][data-presence="online"]'), timeout=10)
            driver.save_screenshot(str(artifacts / "grid.png"))

            # Search narrows the grid; clearing it brings everything back.
            search = driver.find_element(By.CSS_SELECTOR, "#search")
            search.send_keys("meter-002")
            wait("only meter-002 shown", lambda: [
                card.get_attribute("data-device") for card in driver.find_elements(By.CSS_SELECTOR, "[data-device]")
                if card.is_displayed()] == ["meter-002"], timeout=5)
            search.clear()
            search.send_keys(" ")  # an input event; blank matches everything
            wait("both shown again", lambda: len([
                card for card in driver.find_elements(By.CSS_SELECTOR, "[data-device]") if card.is_displayed()]) == 2,
                timeout=5)

            # The device page: live readings and the chart.
            wait("meter-001 opened", lambda: present(driver, '[data-device="meter-001"]').click() or True, timeout=5)
            wait("the device page", lambda: driver.find_element(By.CSS_SELECTOR, "#device-title").text
                       .strip().endswith("meter-001"), timeout=10)
            wait("live readings", lambda: "kWh" in driver.find_element(By.CSS_SELECTOR, "#readings").text,
                       timeout=15)
            assert present(driver, "canvas#chart") is not None
            # The chart plots the day of interval history the meter sent (96 quarter hours at most).
            status_line = wait("the load profile drawn", lambda: re.search(
                r"(\d+) intervals from", driver.find_element(By.CSS_SELECTOR, "#chart-status").text), timeout=15)
            assert 80 <= int(status_line.group(1)) <= 97, status_line.group(0)
            assert present(driver, '#downloads a[data-format="greenbutton"]') is not None
            driver.save_screenshot(str(artifacts / "device.png"))

            # The console: a command sent from the UI reaches the device; its result appears.
            driver.get(hub + "/#/console")
            wait("the console", lambda: present(driver, "#cmd-target"), timeout=10)
            driver.find_element(By.CSS_SELECTOR, "#cmd-target").send_keys("meter-001")
            driver.find_element(By.CSS_SELECTOR, "#cmd-name").send_keys("read")
            driver.find_element(By.CSS_SELECTOR, "#cmd-send").click()
            # Rows are re-rendered as events arrive: read the id in the same step as the lookup.
            command_id = wait("the command's row", lambda: driver.execute_script(
                "const r = document.querySelector('#commands [data-command]'); return r && r.dataset.command"),
                timeout=10)
            wait("SUCCEEDED shown live",
                 lambda: present(driver, f'[data-command="{command_id}"][data-state="SUCCEEDED"]'),
                       timeout=20)
            result = driver.execute_script(
                f"return document.querySelector('[data-command=\"{command_id}\"] .result').innerText")
            assert "kWh" in result, result
            status, view = api.get(f"/v1/commands/{command_id}")
            assert status == 200 and view["device"] == "meter-001" and view["state"] == "SUCCEEDED", view
            assert view["outcome"]["data"]["kWh"] == json.loads(result)["kWh"]

            # A group command: both meters, as a campaign whose counts update live.
            target = driver.find_element(By.CSS_SELECTOR, "#cmd-target")
            target.clear()
            target.send_keys("meter-001,meter-002")
            driver.find_element(By.CSS_SELECTOR, "#cmd-send").click()
            campaign_id = wait("the campaign's row", lambda: driver.execute_script(
                "const r = document.querySelector('#campaigns [data-campaign]'); return r && r.dataset.campaign"),
                timeout=10)
            wait("2 succeeded shown", lambda: "succeeded 2" in (driver.execute_script(
                f"const r = document.querySelector('[data-campaign=\"{campaign_id}\"]'); return r && r.innerText")
                or ""), timeout=20)
            status, view = api.get(f"/v1/campaigns/{campaign_id}")
            assert status == 200 and view["succeeded"] == 2, view
            driver.save_screenshot(str(artifacts / "console.png"))

            # A presence change: the meters die; the hub declares presence-error at the deadline.
            driver.get(hub + "/#/")
            wait("the grid again", lambda: present(driver, '[data-device="meter-001"]'), timeout=10)
            sim.send_signal(signal.SIGKILL)
            sim.wait(timeout=10)

            def declared_error():
                status, view = api.get("/v1/devices/meter-001/presence")
                return time.monotonic() if status == 200 and view["presence"]["inferred"] == "presence-error" \
                    else None
            changed = wait_until("the hub declared meter-001 presence-error", declared_error, timeout=30,
                                 interval=0.05)
            wait("presence-error shown", lambda: present(
                driver, '[data-device="meter-001"][data-presence="presence-error"]'), timeout=5, interval=0.05)
            assert time.monotonic() - changed <= 2.0, "the presence change took more than 2 s to show"

            # The grid at phone width.
            driver.set_window_size(390, 844)
            driver.save_screenshot(str(artifacts / "grid-phone.png"))

            severe = [entry for entry in driver.get_log("browser")
                      if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
            assert severe == [], severe
        finally:
            if sim and sim.poll() is None:
                sim.kill()
                sim.wait(timeout=10)
            driver.quit()
