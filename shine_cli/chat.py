"""`shine chat`: the advisor in a terminal, streaming its answers, over this machine's Shine (in process),
a running Shine (`--url`) or any MCP server command (`--stdio`). `/photo PATH` sends a selfie."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.markup import escape

from shine_mcp.config import Settings

if TYPE_CHECKING:
    from mcp import Client

    from agent.events import Event

MAX_PHOTO_BYTES = 15 * 1024 * 1024
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"RIFF", "image/webp"))
HELP = """Ask anything about skincare or the shop's products. Commands:
  /photo PATH [message]   send a selfie for analysis (add --keep to store it with the report)
  /new                    start a new conversation
  /help                   this help
  /quit                   leave (or Ctrl-D)"""


class Terminal:
    """Prints what a reply streams: text as it arrives, tool progress dimmed, cards as short lists."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.at_line_start = True

    def _line(self, text: str) -> None:
        if not self.at_line_start:
            self.console.print()
        self.console.print(text, highlight=False)
        self.at_line_start = True

    async def __call__(self, event: Event) -> None:
        from agent.events import Card, Done, ErrorEvent, Notice, TextDelta, ToolFinished, ToolStarted

        if isinstance(event, TextDelta):
            self.console.print(escape(event.text), end="", highlight=False, soft_wrap=True)
            self.at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolStarted):
            self._line(f"[dim]  · {escape(event.summary)}…[/dim]")
        elif isinstance(event, ToolFinished):
            mark = "[green]✓[/green]" if event.ok else "[red]✗[/red]"
            self._line(f"[dim]    {mark} {escape(event.summary)}[/dim]")
        elif isinstance(event, Card):
            self._card(event.kind, event.data)
        elif isinstance(event, Notice):
            self._line(f"[yellow]{escape(event.message)}[/yellow]")
        elif isinstance(event, ErrorEvent):
            self._line(f"[red]{escape(event.message)}[/red]")
        elif isinstance(event, Done):
            if not self.at_line_start:
                self.console.print()
            self.at_line_start = True

    def _card(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "checkout" and data.get("url"):
            self._line(f"[bold]Checkout:[/bold] {escape(str(data['url']))}")
        elif kind == "cart":
            total = (data.get("total") or {}).get("display", "")
            self._line(f"[bold]Cart:[/bold] {data.get('count', 0)} item(s) {escape(total)}")
        elif kind == "products":  # the widget draws cards; here they are a numbered list
            from agent.offline.texts import product_line

            for number, product in enumerate(data.get("products") or [], 1):
                self._line(escape(product_line(number, product)))


def _data_url(name: str) -> str:
    path = Path(name).expanduser()
    data = path.read_bytes()
    if len(data) > MAX_PHOTO_BYTES:
        raise typer.BadParameter(f"{path} is {len(data) / 1024 / 1024:.1f} MB; at most 15 MB is accepted")
    media = next((m for magic, m in _MAGIC if data.startswith(magic)), None)
    if media is None:
        raise typer.BadParameter(f"{path} is not a JPEG, PNG or WebP photo")
    return f"data:{media};base64," + base64.b64encode(data).decode()


def _photo_command(line: str) -> tuple[str, str, bool]:
    """`/photo [--keep] PATH [message]` (PATH may be quoted) → (path, message, keep)."""
    words = line[len("/photo") :].split()
    keep = "--keep" in words
    rest = " ".join(w for w in words if w != "--keep")
    if rest[:1] in ("'", '"'):
        closing = rest.find(rest[0], 1)
        if closing > 0:
            return rest[1:closing], rest[closing + 1 :].strip(), keep
    path, _, message = rest.partition(" ")
    return path, message.strip(), keep


async def _session(settings: Settings, client: Client, console: Console) -> None:
    from agent import Advisor, Attachment, Conversation, Limits, ToolBox, build_model

    photos: dict[str, str] = {}

    async def attachment(attachment_id: str) -> str | None:
        return photos.get(attachment_id)

    model = build_model(
        settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None,
        settings.model,
        base_url=settings.anthropic_base_url,
    )
    limits = Limits(
        max_steps=settings.advisor_max_steps,
        token_budget=settings.advisor_token_budget,
        context_tokens=settings.advisor_context_tokens,
    )
    advisor = Advisor(
        model, ToolBox(client, attachments=attachment), limits=limits, instructions=client.instructions
    )
    conversation = Conversation()
    terminal = Terminal(console)
    console.print(f"[bold]Shine[/bold] ({escape(advisor.description)}). /help for commands.", highlight=False)
    while True:
        try:
            line = await anyio.to_thread.run_sync(lambda: console.input("[bold magenta]you>[/bold magenta] "))
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        line = line.strip()
        if not line:
            continue
        attachments: list[Attachment] = []
        if line in ("/quit", "/exit"):
            return
        if line == "/help":
            console.print(HELP, highlight=False)
            continue
        if line == "/new":
            conversation = Conversation()
            console.print("[dim]New conversation.[/dim]")
            continue
        if line.startswith("/photo"):
            path, message, keep = _photo_command(line)
            if not path:
                console.print("[red]/photo needs a file: /photo ~/selfie.jpg[/red]")
                continue
            try:
                photo_id = "att_" + secrets.token_hex(8)
                photos[photo_id] = await anyio.to_thread.run_sync(_data_url, path)
            except (OSError, typer.BadParameter) as exc:
                console.print(f"[red]{escape(str(exc))}[/red]")
                continue
            attachments.append(Attachment(photo_id, keep=keep))
            line = message or "Please analyse my photo."
        elif line.startswith("/"):
            console.print(f"[red]Unknown command {escape(line.split()[0])}.[/red] /help lists them.")
            continue
        console.print("[bold cyan]shine>[/bold cyan] ", end="")
        terminal.at_line_start = False
        await advisor.reply(conversation, line, terminal, attachments=attachments)


async def _run(settings: Settings, url: str | None, stdio: str | None, console: Console) -> None:
    from mcp import Client, StdioServerParameters

    if url:
        target: Any = url
    elif stdio:
        command = shlex.split(stdio)
        target = StdioServerParameters(command=command[0], args=command[1:])
    else:
        from shine_mcp.server import build_server

        target = build_server(settings)
    async with Client(target) as client:
        await _session(settings, client, console)


def chat(
    url: Annotated[
        str | None, typer.Option(help="A running Shine's MCP endpoint, e.g. http://127.0.0.1:8000/mcp.")
    ] = None,
    stdio: Annotated[str | None, typer.Option(help="An MCP server command to run, e.g. 'shine mcp'.")] = None,
) -> None:
    """Chat with the advisor in the terminal (this machine's Shine by default)."""
    if url and stdio:
        raise typer.BadParameter("give --url or --stdio, not both")
    settings = Settings()
    if "SHINE_LOG_LEVEL" not in os.environ:  # the terminal is the conversation: only problems, unless asked
        settings = settings.model_copy(update={"log_level": "WARNING"})
        logging.getLogger().setLevel(logging.WARNING)
    console = Console()
    try:
        anyio.run(_run, settings, url, stdio, console)
    except Exception as exc:  # the terminal's last line of defence: one readable line, not a traceback
        reason = exc.exceptions[0] if isinstance(exc, ExceptionGroup) and exc.exceptions else exc
        target = url or stdio or "this machine's Shine"
        Console(stderr=True).print(
            f"[red]The chat with {escape(target)} stopped: {escape(str(reason))}[/red]"
        )
        raise typer.Exit(1) from exc
