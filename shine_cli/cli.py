"""The `shine` command: serve over HTTP, serve over stdio, and manage the catalog.

Typer gives subcommands, typed options and `--help` for free; Rich draws the import progress bar.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import anyio
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shine_cli.chat import chat
from shine_cli.clicks import clicks_app
from shine_cli.orders import orders_app
from shine_cli.subscriptions import subscriptions_app
from shine_mcp.config import Settings
from shine_mcp.logs import configure_logging

if TYPE_CHECKING:
    from shine_mcp.store.records import ProductIn

app = typer.Typer(help="Shine: an MCP-native skincare advisor.", no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="Import and inspect the product catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(orders_app, name="orders")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(clicks_app, name="clicks")

err = Console(stderr=True)
out = Console()

MAX_ERRORS_SHOWN = 50


def _logging(settings: Settings) -> None:
    # stderr only: over stdio, stdout belongs to the MCP protocol. Plain or JSON, with the request id.
    configure_logging(settings.log_level, settings.log_format)


def _banner(settings: Settings) -> Callable[[str], None]:
    """Start-up lines: Rich text on a terminal; with JSON logs, log lines like every other line on stderr."""
    if settings.log_format == "plain":
        return err.print
    return lambda text: logging.getLogger("shine").info(Text.from_markup(text).plain.strip())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default SHINE_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SHINE_PORT or 8000).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on the one port (more than 1: use PostgreSQL).")
    ] = 1,
) -> None:
    """Serve Shine over HTTP: MCP at /mcp (Streamable HTTP), health at /healthz."""
    import os

    import uvicorn

    from web_shell.app import create_app
    from web_shell.serving import FreezeAfterStartup, serve_workers, uvicorn_config

    settings = Settings()
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    _logging(settings)
    say = _banner(settings)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.allowed_hosts:
        say(
            f"[yellow]Bound to {settings.host}: Shine answers only loopback Host headers and SHINE_PUBLIC_URL's "
            "host (others get 421); list any other names in SHINE_ALLOWED_HOSTS (JSON list).[/yellow]"
        )
    say(f"Shine {settings.base_url}  (MCP: {settings.base_url}/mcp)")
    say(f"  demo shop with the chat widget: {settings.base_url}/")
    for part, runs_on in settings.integrations_summary().items():
        say(f"  {part}: {runs_on}")
    if workers > 1:
        # Each worker is a new interpreter that reads Settings from the environment: hand it the options.
        os.environ.update(SHINE_HOST=settings.host, SHINE_PORT=str(settings.port))
        serve_workers(settings, workers)
        return
    uvicorn.Server(uvicorn_config(FreezeAfterStartup(create_app(settings)), settings)).run()


def _toolsets(value: str | None) -> list[str] | None:
    if value is None:
        return None
    chosen = list(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in ("shopper", "merchant", "admin")]
    if unknown or not chosen:
        raise typer.BadParameter(f"{', '.join(unknown) or 'nothing'}: choose from shopper, merchant, admin")
    return chosen


@app.command()
def mcp(
    toolsets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated tools to offer: shopper (default), merchant (refunds, sales report, page "
            "import), admin (audit log). merchant or admin make you the shop's admin. Default: SHINE_TOOLSETS."
        ),
    ] = None,
) -> None:
    """Serve Shine over stdio for Claude Desktop and other local MCP clients. The web pages its links open
    (payment, orders) are served beside it on a free loopback port, unless SHINE_PUBLIC_URL is set."""
    from web_shell.beside_stdio import serve_stdio

    settings = Settings()
    chosen = _toolsets(toolsets)
    if chosen is not None:
        settings = settings.model_copy(update={"toolsets": chosen})
    _logging(settings)
    anyio.run(serve_stdio, settings)


@app.command()
def purge() -> None:
    """Delete expired uploads, idle chats, web cache entries, OAuth codes and tokens, web sessions and
    rate-limit counters once (`shine serve` does this every SHINE_PURGE_SECONDS)."""
    from shine_mcp.clock import utcnow
    from shine_mcp.store.db import open_database
    from shine_mcp.store.purge import purge_expired

    settings = Settings()

    async def _purge() -> dict[str, int]:
        db = await open_database(settings)
        try:
            return await purge_expired(db, utcnow())
        finally:
            await db.close()

    for kind, deleted in anyio.run(_purge).items():
        out.print(f"{kind}: {deleted} deleted")


app.command("chat")(chat)


@catalog_app.command("import")
def catalog_import(
    path: Annotated[Path, typer.Argument(help="A Shine JSON, Shine CSV or Shopify product CSV file.")],
    format: Annotated[
        str | None, typer.Option("--format", help="json, csv or shopify (default: detected from the file).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Remove products that are not in this file.")] = False,
    skip_invalid: Annotated[bool, typer.Option(help="Import the valid rows and report the others.")] = False,
    currency: Annotated[str, typer.Option(help="Currency for files without one (Shopify).")] = "USD",
    keep_demo: Annotated[bool, typer.Option(help="Keep the bundled demo products next to yours.")] = False,
    measure_images: Annotated[
        bool,
        typer.Option(
            help="Read each https picture's width and height from its first bytes, so pages reserve its space."
        ),
    ] = True,
) -> None:
    """Import products. All-or-nothing unless --skip-invalid; errors name the file, row and field."""
    from shine_mcp.store.catalog_rows import CatalogFileError, Format
    from shine_mcp.store.importers import count_rows, detect_format, read_catalog

    if format not in (None, "json", "csv", "shopify"):
        raise typer.BadParameter("use json, csv or shopify", param_hint="--format")
    if not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise typer.BadParameter(
            "use a three-letter ISO 4217 code such as USD or EUR", param_hint="--currency"
        )
    if not path.is_file():
        err.print(f"[red]{path}: no such file[/red]")
        raise typer.Exit(2)
    settings = Settings()
    try:
        fmt = cast(Format, format) if format else detect_format(path)
        total = count_rows(path, fmt)
        with Progress(
            TextColumn("reading {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(path.name, total=total)
            parsed = read_catalog(
                path,
                fmt,
                default_currency=currency.upper(),
                progress=lambda n: progress.update(task, completed=n),
            )
    except CatalogFileError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    for note in parsed.skipped:
        err.print(f"[dim]skipped: {note}[/dim]")
    if parsed.errors:
        for error in parsed.errors[:MAX_ERRORS_SHOWN]:
            err.print(f"[red]{error}[/red]")
        if len(parsed.errors) > MAX_ERRORS_SHOWN:
            err.print(f"[red]… and {len(parsed.errors) - MAX_ERRORS_SHOWN} more errors[/red]")
        if not skip_invalid:
            err.print(
                f"[red]Nothing imported: {len(parsed.errors)} invalid rows. Fix them, or pass --skip-invalid "
                f"to import the {len(parsed.records)} valid products.[/red]"
            )
            raise typer.Exit(1)
    if measure_images:
        from shine_cli.pictures import measure_record_pictures

        for note in anyio.run(measure_record_pictures, parsed.records):
            err.print(f"[yellow]{note}[/yellow]")
    written, removed_demo = anyio.run(_write_catalog, settings, parsed.records, path.name, replace, keep_demo)
    out.print(f"Imported {written} products from {path.name} ({fmt}).")
    if removed_demo:
        out.print(f"Removed {removed_demo} bundled demo products (pass --keep-demo to keep them).")


async def _write_catalog(
    settings: Settings, records: list[ProductIn], source_name: str, replace: bool, keep_demo: bool
) -> tuple[int, int]:
    from shine_mcp.store.catalog import remove_source, upsert_products
    from shine_mcp.store.db import open_database

    db = await open_database(settings)
    try:
        written = await upsert_products(db, records, source=f"import:{source_name}", replace=replace)
        removed = 0 if keep_demo or replace else await remove_source(db, "demo")
        return written, removed
    finally:
        await db.close()


@catalog_app.command("stats")
def catalog_stats() -> None:
    """Show how many products the catalog holds, by category and source."""
    settings = Settings()

    from shine_mcp.store.catalog import CatalogStats
    from shine_mcp.store.catalog import catalog_stats as read_stats
    from shine_mcp.store.db import open_database

    async def _stats() -> CatalogStats:

        db = await open_database(settings)
        try:
            return await read_stats(db)
        finally:
            await db.close()

    stats = anyio.run(_stats)
    table = Table(
        title=f"Catalog: {stats.products} products, {stats.in_stock} in stock, {stats.brands} brands"
    )
    table.add_column("category")
    table.add_column("products", justify="right")
    for category, count in stats.by_category.items():
        table.add_row(category, str(count))
    out.print(table)
    out.print("sources: " + ", ".join(f"{s} ({n})" for s, n in stats.by_source.items()))
    out.print("currencies: " + ", ".join(f"{c} ({n})" for c, n in stats.currencies.items()))


if __name__ == "__main__":
    app()
