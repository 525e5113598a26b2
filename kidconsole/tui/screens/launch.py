"""The launch form: a config (yours from ./configs or ./, or a shipped one), GPU(s) with what is free now, a
name, and the few overrides people change (LoRA r, learning rate, phase). Launches through
``kidconsole.runs.launch``; a shipped config is first copied into ./configs, so the run's source is a file you
own and can edit (kidconsole/config_files.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static

from kidconsole.shown import text
from kidconsole.tui.widgets.run_card import fmt_bytes

ALL_PHASES = -1
BUSY_UTIL = 10.0  # percent: a GPU above this, or with a tenth of its memory used, is busy


def gpu_is_free(gpu) -> bool:
    mem_share = (gpu.mem_used or 0) / gpu.mem_total if gpu.mem_total else 0.0
    return (gpu.util or 0.0) < BUSY_UTIL and mem_share < 0.1


def form_overrides(config: dict, lora_r: str, lr: str, phase: int, extra: str) -> list[str]:
    """The form's fields as ``key=value`` overrides of ``config`` (blank fields change nothing).

    The learning rate applies to every phase that runs; choosing one phase keeps
    only that phase of the curriculum."""
    out: list[str] = []
    if lora_r.strip():
        out.append(f"lora.r={lora_r.strip()}")
    phases = config.get("phases") or []
    if phase != ALL_PHASES:
        out.append("phases=" + yaml.safe_dump([phases[phase]], default_flow_style=True, width=10**6).strip())
        if lr.strip():  # parsed as the config parses values (1e-4 is a number)
            out.append(f"phases.0.lr={lr.strip()}")
    elif lr.strip():
        out += [f"phases.{i}.lr={lr.strip()}" for i in range(len(phases))]
    out += extra.split()
    return out


class LaunchScreen(Screen):
    TITLE = "New run"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Cancel"),
        Binding("ctrl+s", "launch", "Launch"),
    ]
    DEFAULT_CSS = """
    LaunchScreen #form { padding: 0 1; }
    LaunchScreen .row { height: auto; margin-bottom: 1; }
    LaunchScreen Label { width: 12; padding: 0 1 0 0; }
    LaunchScreen Input, LaunchScreen Select { width: 1fr; }
    LaunchScreen #gpus { height: auto; max-height: 6; width: 1fr; border: none; padding: 0; }
    LaunchScreen #launch-error { color: $error; height: auto; }
    LaunchScreen #buttons { height: 3; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.configs: dict[str, dict] = {}
        self.prefer: str | None = None  # the config to choose once the list is loaded

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("Config")
                yield Select([], id="config", prompt="choose a config: yours, or a shipped one", compact=True)
            with Horizontal(classes="row"):
                yield Label("GPUs")
                yield SelectionList(id="gpus")
            with Horizontal(classes="row"):
                yield Label("Name")
                yield Input(compact=True, id="name", placeholder="from the config (made unique)")
            with Horizontal(classes="row"):
                yield Label("LoRA r")
                yield Input(compact=True, id="lora-r", type="integer", placeholder="as in the config")
            with Horizontal(classes="row"):
                yield Label("LR")
                yield Input(compact=True, id="lr", placeholder="as in the config, e.g. 1e-4")
            with Horizontal(classes="row"):
                yield Label("Phase")
                yield Select([("all phases", ALL_PHASES)], id="phase", value=ALL_PHASES, allow_blank=False, compact=True)
            with Horizontal(classes="row"):
                yield Label("Overrides")
                yield Input(compact=True, id="extra", placeholder="key=value ... (e.g. train.eval_every=1000)")
            yield Static("", id="launch-error")
            with Horizontal(id="buttons"):
                yield Button("Launch (ctrl+s)", id="go", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self._fill_gpus()
        self.load_configs()
        self.query_one("#config", Select).focus()

    def runs_changed(self) -> None:
        pass  # the GPU list is a snapshot taken when the form opens: it must not move under the cursor

    def _fill_gpus(self) -> None:
        gpus = self.query_one("#gpus", SelectionList)
        gpus.clear_options()
        first_free = True
        for g in self.app.gpus:
            free = gpu_is_free(g)
            util = f"{g.util:.0f}%" if g.util is not None else "-"
            label = f"GPU{g.index}  {util:>4} util  {fmt_bytes(g.mem_used)}/{fmt_bytes(g.mem_total)}  " + (
                "free" if free else "busy")
            gpus.add_option((label, g.index, free and first_free))
            first_free = first_free and not free
        if not self.app.gpus:
            gpus.add_option(("no GPU found: the run uses the CPU", -1, False))
            gpus.disabled = True

    @work(thread=True, exclusive=True, group="launch-configs")
    def load_configs(self) -> None:
        from kidconsole.config import read_yaml
        from kidconsole.config_files import own, packaged
        from kidconsole.errors import KidconsoleError

        mine = own([self.app.configs_dir, Path(".")])
        options: list[tuple[Text, str]] = []
        configs: dict[str, dict] = {}
        for path in mine + list(packaged().values()):
            try:
                raw = read_yaml(path)  # as written (relative paths stay relative for the overrides)
            except KidconsoleError:
                raw = None
            configs[str(path)] = raw if isinstance(raw, dict) else {}
            label = f"{path.stem}  (shipped)" if path not in mine else str(path)
            options.append((text(label), str(path)))  # a file name is text, never markup
        self.app.call_from_thread(self._configs_loaded, configs, options, len(mine))

    def _configs_loaded(self, configs: dict[str, dict], options: list[tuple[Text, str]], own: int) -> None:
        self.configs = configs
        select = self.query_one("#config", Select)
        current = self.prefer or select.value
        select.set_options(options)
        if isinstance(current, str) and current in configs:
            select.value = current
        elif own == 1:  # the one config of this project
            select.value = options[0][1]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "config":
            return
        cfg = self.configs.get(event.value, {}) if isinstance(event.value, str) else {}
        phases = cfg.get("phases") or []
        options = [("all phases", ALL_PHASES)] + [
            (text(f"only phase {i + 1}: {p.get('name') or ''}".rstrip(": ")), i) for i, p in enumerate(phases)]
        self.query_one("#phase", Select).set_options(options)
        self.query_one("#phase", Select).value = ALL_PHASES

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "go":
            self.action_launch()

    def request(self) -> dict[str, Any] | None:
        """The launch arguments the form describes, or None (with the reason shown) when incomplete."""
        error = self.query_one("#launch-error", Static)
        config = self.query_one("#config", Select).value
        if not isinstance(config, str):
            error.update("Choose a config first.")
            return None
        overrides = form_overrides(self.configs.get(config, {}), self.query_one("#lora-r", Input).value,
                                   self.query_one("#lr", Input).value, self.query_one("#phase", Select).value,
                                   self.query_one("#extra", Input).value)
        gpus = tuple(i for i in self.query_one("#gpus", SelectionList).selected if i >= 0)
        name = self.query_one("#name", Input).value.strip() or None
        error.update("")
        return {"config": config, "gpus": gpus, "name": name, "overrides": overrides,
                "runs_root": self.app.roots[0]}

    def action_launch(self) -> None:
        req = self.request()
        if req is not None:
            self.query_one("#go", Button).disabled = True
            self.launch(req)

    @work(thread=True, exclusive=True, group="launch")
    def launch(self, req: dict[str, Any]) -> None:
        from kidconsole.config_files import copy_packaged, is_packaged
        from kidconsole.errors import KidconsoleError

        config, copied = req.pop("config"), None
        try:
            if is_packaged(config):
                config = copied = str(copy_packaged(config, self.app.configs_dir))
            run_dir = self.app.launcher(config, **req)
        except (KidconsoleError, OSError) as e:
            note = f"\nThe shipped config is copied to {copied}: change the keys marked EDIT there, or set them " \
                   f"in Overrides." if copied else ""
            self.app.call_from_thread(self._failed, f"{e}{note}", copied)
            return
        self.app.call_from_thread(self._launched, Path(run_dir))

    def _failed(self, message: str, copied: str | None = None) -> None:
        self.query_one("#launch-error", Static).update(text(message, lines=True))  # file names, values: never markup
        if copied:  # the copy is the user's now: list it, chosen
            self.prefer = copied
            self.load_configs()
        self.query_one("#go", Button).disabled = False
        self.notify(message, severity="error")

    def _launched(self, run_dir: Path) -> None:
        self.notify(f"Launched {run_dir.name}")
        self.app.watcher.wake(rediscover=True)
        self.app.pop_screen()
