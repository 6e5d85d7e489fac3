"""`Advisor.reply`: one turn of the advisor loop. The model streams text and asks for tools, the tools run
through MCP (in parallel when several are asked at once), results go back, until the model ends its turn,
the step limit or the token budget. The rules of `agent.policy` are enforced here, in code."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from agent.cards import cards_for, cart_fingerprint, finished_summary, started_summary
from agent.conversation import Conversation
from agent.events import (
    Card,
    Done,
    Emit,
    ErrorEvent,
    Notice,
    StopKind,
    TextDelta,
    ToolFinished,
    ToolProgress,
    ToolStarted,
)
from agent.model import Finish, Model, ModelError, TextChunk, ToolCall, Usage
from agent.prompt import system_prompt
from agent.tools import ToolBox, ToolOutcome

log = logging.getLogger("shine.advisor")

NOT_CONFIRMED = (
    "checkout refused by the shop's rules: the shopper has not explicitly confirmed this cart in this "
    "conversation. Show the cart with view_cart, give the total, and ask them to confirm; call checkout only "
    "after they say yes in their next message."
)
SEEN_TOO_LATE = (
    "checkout refused by the shop's rules: the shopper has not seen the cart since it last changed. Show the "
    "cart with view_cart and ask them to confirm it in their next message."
)
CHANGED_NOW = (
    "checkout refused by the shop's rules: the cart changes in this same reply, so the shopper has not seen "
    "what they would pay for. Show the new cart and ask them to confirm it in their next message."
)
TAINTED = (
    "refused by the shop's rules: web content was read in this reply, and actions that change the cart, "
    "profile or orders need a fresh request from the shopper after they have seen it. Tell them what you "
    "found and ask."
)
CONFIRM_HINT = "Checkout needs your go-ahead: check the cart, then press Checkout or say “yes, check out”."
NEEDS_YES = (
    "{tool} with {argument}=true refused by the shop's rules: the shopper has not said yes to exactly this "
    "in their latest message, right after being told what it does. Call {tool} without {argument} (that "
    "changes nothing and says what would happen), tell the shopper, and ask; call it with {argument}=true "
    "and the same other arguments only after they say yes in their next message."
)
RULES = "by the shop's rules"  # in every refusal of the loop's own (never a tool's answer)


@dataclass(frozen=True)
class Limits:
    max_steps: int = 8
    token_budget: int = 150_000
    context_tokens: int = 60_000
    tool_timeout: float = 120.0
    max_parallel_tools: int = 4


@dataclass(frozen=True)
class Attachment:
    """A photo sent with a message: its upload id, and whether the shopper asked to keep it."""

    id: str
    keep: bool = False


@dataclass
class ReplyResult:
    stop_reason: StopKind
    steps: int
    usage: Usage
    text: str


@dataclass
class _Run:
    turn: int
    emit: Emit
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    text: list[str] = field(default_factory=list)
    tainted: bool = False
    hinted: bool = False
    said_yes: bool = False  # this turn's message is an explicit yes
    asked: bool = False  # the shopper was told this reply waits for their go-ahead


class Advisor:
    def __init__(
        self,
        model: Model,
        tools: ToolBox,
        *,
        limits: Limits | None = None,
        instructions: str | None = None,
    ) -> None:
        self.model, self.tools = model, tools
        self.limits = limits or Limits()
        self.policy = tools.policy
        self.system = system_prompt(instructions)

    @property
    def description(self) -> str:
        return "offline advisor" if self.model.kind == "offline" else f"{self.model.kind}:{self.model.name}"

    async def reply(
        self,
        conversation: Conversation,
        text: str,
        emit: Emit,
        *,
        attachments: Sequence[str | Attachment] = (),
        confirm_checkout: bool = False,
        checkout_args: dict[str, str] | None = None,
    ) -> ReplyResult:
        """Answer one message from the shopper, streaming events to `emit` and updating `conversation`.

        `attachments` are photo upload ids sent with the message. `confirm_checkout` is the shopper pressing
        the Checkout button: an explicit confirmation that checks out straight away if the rules allow."""
        state = conversation.state
        state.turn += 1
        run = _Run(turn=state.turn, emit=emit)
        photos = [a if isinstance(a, Attachment) else Attachment(a) for a in attachments]
        for photo in photos:
            if photo.id not in state.uploads:
                state.uploads.append(photo.id)
        blocks = [{"type": "text", "text": _with_attachments(text, photos)}]
        conversation.append("user", blocks)

        flags = self.policy.red_flags_in(text)
        if flags:
            return await self._refer(conversation, run, self.policy.referral_answer(flags))
        run.said_yes = self.policy.is_confirmation(text)
        if confirm_checkout or run.said_yes:
            state.confirmed_turn = run.turn
        if confirm_checkout:
            return await self._checkout_now(conversation, run, checkout_args or {})
        return await self._loop(conversation, run)

    # --- the model loop ---------------------------------------------------------------------------
    async def _loop(self, conversation: Conversation, run: _Run) -> ReplyResult:
        specs = await self.tools.specs()
        while True:
            if run.steps >= self.limits.max_steps:
                return await self._stop(conversation, run, "step_limit")
            if run.usage.total >= self.limits.token_budget:
                return await self._stop(conversation, run, "token_budget")
            run.steps += 1
            messages = conversation.fitted(self.limits.context_tokens)
            text_parts: list[str] = []
            calls: list[ToolCall] = []
            finish = Finish("end_turn")
            try:
                async for event in self.model.respond(self.system, messages, specs):
                    if isinstance(event, TextChunk):
                        if not text_parts and run.text:
                            await self._say(run, "\n\n")
                        text_parts.append(event.text)
                        await self._say(run, event.text)
                    elif isinstance(event, ToolCall):
                        calls.append(event)
                    else:
                        finish = event
            except ModelError as exc:
                if text_parts:
                    conversation.append("assistant", [{"type": "text", "text": "".join(text_parts)}])
                await run.emit(ErrorEvent("model_error", exc.message))
                return await self._done(run, "model_error")
            run.usage.add(finish.usage)

            content: list[dict[str, object]] = []
            if "".join(text_parts).strip():
                content.append({"type": "text", "text": "".join(text_parts)})
            content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls]
            conversation.append("assistant", content)

            if not calls:
                stop: StopKind = "max_tokens" if finish.stop_reason == "max_tokens" else "end_turn"
                if finish.stop_reason == "refusal":
                    stop = "refusal"
                if stop == "max_tokens":
                    await run.emit(Notice("max_tokens", "The answer was cut short; ask me to continue."))
                return await self._done(run, stop)
            if run.steps >= self.limits.max_steps or run.usage.total >= self.limits.token_budget:
                why = "step limit" if run.steps >= self.limits.max_steps else "token budget"
                conversation.append("user", [_not_run(c, why) for c in calls])
                return await self._stop(
                    conversation, run, "step_limit" if why == "step limit" else "token_budget"
                )
            outcomes = await self._run_calls(conversation, run, calls)
            conversation.append("user", [_result_block(o) for o in outcomes])

    async def _say(self, run: _Run, text: str) -> None:
        run.text.append(text)
        await run.emit(TextDelta(text))

    async def _done(self, run: _Run, stop: StopKind) -> ReplyResult:
        await run.emit(Done(stop, run.steps, self.description, run.usage.as_dict()))
        return ReplyResult(stop, run.steps, run.usage, "".join(run.text))

    async def _stop(self, conversation: Conversation, run: _Run, stop: StopKind) -> ReplyResult:
        if stop == "step_limit":
            note = (
                f"I stopped here: this answer reached its limit of {self.limits.max_steps} steps. "
                "Tell me which part to continue with."
            )
        else:
            note = "I stopped here: this answer used up its processing budget. Ask again to continue."
        await run.emit(Notice(stop, note))
        await self._say(run, ("\n\n" if run.text else "") + note)
        conversation.append("assistant", [{"type": "text", "text": note}])
        return await self._done(run, stop)

    async def _refer(self, conversation: Conversation, run: _Run, answer: str) -> ReplyResult:
        """A medical red flag: the dermatologist answer, from the loop itself, with no tools and no products."""
        await run.emit(Notice("medical_referral", "This sounds like something for a dermatologist."))
        await self._say(run, answer)
        conversation.append("assistant", [{"type": "text", "text": answer}])
        return await self._done(run, "medical_referral")

    # --- tools ----------------------------------------------------------------------------------------
    async def _gate(
        self, conversation: Conversation, run: _Run, call: ToolCall, earlier: Sequence[ToolCall]
    ) -> str | None:
        """Why this call may not run (a rule of the shop), or None."""
        spec = await self.tools.spec(call.name)
        if spec is None:
            return None  # the ToolBox answers unknown names itself
        if run.tainted and not spec.read_only:
            return TAINTED
        if call.name in self.policy.confirm_tools and _confirming(call, self.policy.confirm_argument):
            if run.said_yes and _key(call, self.policy.confirm_argument) in self._proposed(conversation):
                return None
            return NEEDS_YES.format(tool=call.name, argument=self.policy.confirm_argument)
        if call.name not in self.policy.checkout_tools:
            return None
        state = conversation.state
        if state.confirmed_turn != run.turn:
            return NOT_CONFIRMED
        if state.cart_shown_turn is None or state.cart_shown_turn >= run.turn:
            return SEEN_TOO_LATE if state.cart_shown_turn is not None else NOT_CONFIRMED
        if state.cart_changed_turn == run.turn or any(c.name in self.policy.changes_cart for c in earlier):
            return CHANGED_NOW
        return await self._cart_unchanged(conversation, run)

    def _proposed(self, conversation: Conversation) -> set[str]:
        """The confirm-first calls the shopper was told about in the previous turn: made without `confirm`
        and answered by the tool itself with what they would do (not refused by a rule of this loop)."""
        starts = [i for i, m in enumerate(conversation.messages) if _opens_turn(m)]
        if len(starts) < 2:
            return set()
        previous = conversation.messages[starts[-2] : starts[-1]]
        answers = {
            str(b.get("tool_use_id")): (bool(b.get("is_error")), str(b.get("content")))
            for m in previous
            for b in _blocks(m)
            if b.get("type") == "tool_result"
        }
        calls = [
            ToolCall(str(b.get("id")), str(b.get("name")), dict(b.get("input") or {}))
            for m in previous
            if m["role"] == "assistant"
            for b in _blocks(m)
            if b.get("type") == "tool_use"
        ]
        return {
            _key(call, self.policy.confirm_argument)
            for call in calls
            if call.id in answers and self._asks_first(*answers[call.id], call)
        }

    def _asks_first(self, is_error: bool, answer: str, call: ToolCall) -> bool:
        """The tool itself answered a call without the go-ahead by saying what it would do and asking for
        `confirm=true` (a refusal by this loop's rules never counts: the tool did not run)."""
        argument = self.policy.confirm_argument
        return (
            is_error
            and call.name in self.policy.confirm_tools
            and not _confirming(call, argument)
            and f"{argument}=true" in answer
            and RULES not in answer
        )

    async def _cart_unchanged(self, conversation: Conversation, run: _Run) -> str | None:
        """Re-read the cart: if it changed since the shopper saw it (another tab, another client), show it
        again and ask anew rather than charge for something they did not confirm."""
        state = conversation.state
        if state.cart_fingerprint is None or not await self.tools.has(self.policy.cart_view_tool):
            return None
        check = ToolCall(id=f"shine_cart_check_{run.turn}", name=self.policy.cart_view_tool, input={})
        outcome = await self._call_one(run, check)
        if not outcome.ok:
            return None  # the checkout tool re-validates the cart itself
        now = cart_fingerprint(outcome.structured)
        if now is not None and now != state.cart_fingerprint:
            self._observe(conversation, run, outcome)
            return SEEN_TOO_LATE
        return None

    async def _call_one(self, run: _Run, call: ToolCall) -> ToolOutcome:
        await run.emit(ToolStarted(call.id, call.name, started_summary(call)))

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await run.emit(ToolProgress(call.id, call.name, done, total, message))

        outcome = await self.tools.call(call, progress)
        summary = finished_summary(outcome.structured) if outcome.ok else outcome.message[:160]
        await run.emit(ToolFinished(call.id, call.name, outcome.ok, summary, outcome.duration_ms))
        if outcome.ok:
            for card in cards_for(call, outcome.structured, self.policy):
                await run.emit(card)
        return outcome

    async def _run_calls(
        self, conversation: Conversation, run: _Run, calls: list[ToolCall]
    ) -> list[ToolOutcome]:
        outcomes: list[ToolOutcome | None] = [None] * len(calls)
        allowed: list[int] = []
        for i, call in enumerate(calls):
            refusal = await self._gate(conversation, run, call, calls[:i])
            if refusal is None:
                allowed.append(i)
                continue
            outcomes[i] = ToolOutcome(call, "refused", None, refusal, refusal)
            await run.emit(ToolStarted(call.id, call.name, started_summary(call)))
            await run.emit(ToolFinished(call.id, call.name, False, "not allowed yet", 0))
            if call.name in self.policy.checkout_tools and not run.hinted:
                run.hinted = True
                await run.emit(Notice("checkout_needs_confirmation", CONFIRM_HINT))
            await self._ask_for_yes(run, call)

        limiter = anyio.CapacityLimiter(self.limits.max_parallel_tools)

        async def run_one(i: int) -> None:
            async with limiter:
                outcomes[i] = await self._call_one(run, calls[i])

        async with anyio.create_task_group() as group:
            for i in allowed:
                group.start_soon(run_one, i)

        done = [o for o in outcomes if o is not None]
        for outcome in done:
            self._observe(conversation, run, outcome)
            if self._asks_first(outcome.status == "tool_error", outcome.for_model, outcome.call):
                await self._ask_for_yes(run, outcome.call)  # the tool said what it would do: now ask
        return done

    async def _ask_for_yes(self, run: _Run, call: ToolCall) -> None:
        """Tell the shopper, in the loop's own words, that a deletion or a removed safety limit waits for
        their explicit yes (whatever the model writes around it)."""
        label = self.policy.confirm_tools.get(call.name)
        if label is None or run.asked:
            return
        run.asked = True
        await run.emit(
            Notice("needs_confirmation", f"This needs your go-ahead: {label}. Reply “yes” to go ahead.")
        )

    def _observe(self, conversation: Conversation, run: _Run, outcome: ToolOutcome) -> None:
        """Update what the rules need to know from a result that the shopper has now seen."""
        if not outcome.ok:
            return
        state, name = conversation.state, outcome.call.name
        if name in self.policy.changes_cart:
            state.cart_changed_turn = run.turn
        if name in self.policy.shows_cart:
            state.cart_shown_turn = run.turn
            state.cart_fingerprint = cart_fingerprint(outcome.structured)
        if name in self.policy.web_tools:
            run.tainted = True
        if name in self.policy.checkout_tools:
            state.confirmed_turn = None
            state.cart_shown_turn = None
            state.cart_fingerprint = None

    # --- the Checkout button --------------------------------------------------------------------------
    async def _checkout_now(
        self, conversation: Conversation, run: _Run, arguments: dict[str, str]
    ) -> ReplyResult:
        spec = await self.tools.spec(next(iter(sorted(self.policy.checkout_tools))))
        if spec is None:
            answer = "Checkout is not available in this shop yet, so I can't take payment here."
            await self._say(run, answer)
            conversation.append("assistant", [{"type": "text", "text": answer}])
            return await self._done(run, "end_turn")
        accepted = {k: v for k, v in arguments.items() if k in spec.properties()}
        call = ToolCall(id=f"shine_checkout_{run.turn}", name=spec.name, input=accepted)
        refusal = await self._gate(conversation, run, call, [])
        if refusal is not None:
            answer = "Before I check out, please look over your cart and confirm it again."
            await run.emit(Notice("checkout_needs_confirmation", CONFIRM_HINT))
            if (
                await self.tools.has(self.policy.cart_view_tool)
                and conversation.state.cart_shown_turn != run.turn
            ):
                view = ToolCall(id=f"shine_cart_{run.turn}", name=self.policy.cart_view_tool, input={})
                self._observe(conversation, run, await self._call_one(run, view))
            await self._say(run, answer)
            conversation.append("assistant", [{"type": "text", "text": answer}])
            return await self._done(run, "refusal")
        outcome = await self._call_one(run, call)
        self._observe(conversation, run, outcome)
        conversation.append(
            "assistant", [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]
        )
        conversation.append("user", [_result_block(outcome)])
        if outcome.ok:
            answer = "Here is your secure checkout link. Your order is reserved until you pay."
            cards = cards_for(call, outcome.structured, self.policy)
            if cards and cards[0].data.get("simulated"):
                answer = "Here is your checkout link (a simulated checkout: no real payment is taken)."
        else:
            answer = f"I couldn't start the checkout: {outcome.message}"
        await self._say(run, answer)
        conversation.append("assistant", [{"type": "text", "text": answer}])
        return await self._done(run, "checkout" if outcome.ok else "end_turn")


def _confirming(call: ToolCall, argument: str) -> bool:
    """The call asks to go ahead: any value but absent or false (a model may send "true" as text)."""
    return call.input.get(argument) not in (None, False)


def _key(call: ToolCall, argument: str) -> str:
    """One action: the tool and its arguments, without the go-ahead itself."""
    rest = {k: v for k, v in call.input.items() if k != argument}
    return json.dumps([call.name, rest], sort_keys=True, ensure_ascii=False, default=str)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _opens_turn(message: dict[str, Any]) -> bool:
    return message.get("role") == "user" and any(b.get("type") == "text" for b in _blocks(message))


def _with_attachments(text: str, photos: Sequence[Attachment]) -> str:
    notes = "".join(f"\n[photo attached: {p.id}{', keep the photo' if p.keep else ''}]" for p in photos)
    return (text.strip() + notes).strip()


def _result_block(outcome: ToolOutcome) -> dict[str, object]:
    block: dict[str, object] = {
        "type": "tool_result",
        "tool_use_id": outcome.call.id,
        "content": outcome.for_model,
    }
    if not outcome.ok:
        block["is_error"] = True
        if outcome.status == "failure":
            block["content"] = (
                outcome.for_model + " (a failure of the tool, not of your arguments: do not retry now)"
            )
    return block


def _not_run(call: ToolCall, why: str) -> dict[str, object]:
    return {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": f"not run: this reply reached its {why}",
        "is_error": True,
    }


__all__ = ["Advisor", "Attachment", "Card", "Limits", "ReplyResult"]
