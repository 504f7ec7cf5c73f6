"""Instrument calls to an OpenAI-compatible chat-completions API with relaywatch's metrics.

    from prometheus_client import start_http_server
    from provision.instrument import ChatCompletions, GatewayMetrics

    metrics = GatewayMetrics.from_config()          # profile and price-table models of relaywatch.yaml
    client = ChatCompletions("https://relay.example.com/v1", api_key, metrics=metrics)
    start_http_server(9464, addr="127.0.0.1")       # your choice, once, at start-up; never port 9090
    answer = client.create("gpt-4.1", [{"role": "user", "content": "hi"}], temperature=0)
    for chunk in client.stream("gpt-4.1", messages):  # tokens from the final usage chunk
        ...

Or wrap any other client (the openai SDK, httpx):

    with metrics.track("gpt-4.1") as call:
        response = openai_client.chat.completions.create(...)
        call.usage(response.usage)

What is recorded, on the series of the configured profile: one request per call
by model and status (the HTTP code as a string; `timeout`; `error` for anything
else that raised), the call's latency (failures included: a timeout shows up at
the timeout), prompt and completion tokens from the answer's `usage`, and the
requests in flight. A call that raises is recorded, then the exception is
re-raised unchanged.

Unlike the source document's client this starts no HTTP server (exposing the
metrics is the application's decision), never sends `timeout` in the request
body (it is the HTTP timeout of `requests`), and folds models it was not told
about into `other`, so a typo or a new model name cannot grow the series without
bound.
"""

from __future__ import annotations

import itertools
import json
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import prometheus_client
import requests
from prometheus_client import CollectorRegistry

from provision.config import DEFAULT_PRICING
from provision.contract import Profile
from provision.recorder import ERROR, TIMEOUT, Recorder

OTHER_MODEL = "other"
DEFAULT_TIMEOUT = (5.0, 120.0)  # connect, read (seconds): long answers stream for a while
# registry -> profile name -> Recorder; weak, so a dropped registry takes its recorders along.
_recorders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class StreamError(RuntimeError):
    """The API sent an error object inside a stream that had started with HTTP 200."""


@dataclass
class Call:
    """What one tracked call learned; set `status` or call `usage()` inside `track`."""

    status: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def usage(self, usage) -> None:
        """Take token counts from an OpenAI `usage` (a dict or an object with the same fields)."""
        if usage is None:
            return
        read = usage.get if isinstance(usage, dict) else lambda key: getattr(usage, key, None)
        prompt, completion = read("prompt_tokens"), read("completion_tokens")
        self.prompt_tokens = int(prompt) if prompt is not None else None
        self.completion_tokens = int(completion) if completion is not None else None


class GatewayMetrics:
    """The profile's metrics on a registry, and `track()` to record calls on them."""

    def __init__(
        self,
        profile: str | Profile = "holysheep",
        *,
        models: Iterable[str] | None = None,
        registry: CollectorRegistry | None = None,
    ):
        if isinstance(profile, str):
            from provision.profiles import get_profile

            profile = get_profile(profile)
        self.profile = profile
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self.models = frozenset(DEFAULT_PRICING if models is None else models)
        # One set of collectors per registry and profile: a second GatewayMetrics
        # (another client, a reloaded module) shares them instead of failing.
        per_profile = _recorders.setdefault(self.registry, {})
        if profile.name not in per_profile:
            per_profile[profile.name] = Recorder(profile, self.registry)
        self.recorder = per_profile[profile.name]

    @classmethod
    def from_config(cls, path: str | None = None, *, registry: CollectorRegistry | None = None) -> "GatewayMetrics":
        """The profile and the price table's models of relaywatch.yaml."""
        from provision.config import load_config
        from provision.definitions import make_context

        config = load_config(path)
        return cls(make_context(config).profile, models=config.pricing, registry=registry)

    def model_label(self, model: str) -> str:
        """The model as recorded: one of the known models, else `other`."""
        return model if model in self.models else OTHER_MODEL

    @contextmanager
    def track(self, model: str) -> Iterator[Call]:
        """Record the call made inside the block: status, latency, tokens, in flight."""
        label = self.model_label(model)
        call = Call()
        self.recorder.add_in_flight(label, 1)
        started = time.perf_counter()
        try:
            yield call
        except GeneratorExit:
            # The caller stopped reading a stream: the answer came, it was just not read to the end.
            call.status = call.status or ERROR
            raise
        except Exception as exc:
            call.status = status_of(exc)
            raise
        except BaseException:
            call.status = ERROR
            raise
        finally:
            self.recorder.add_in_flight(label, -1)
            self.recorder.record(label, call.status or "200", time.perf_counter() - started,
                                 call.prompt_tokens, call.completion_tokens)


def status_of(exc: BaseException) -> str:
    """The contract's status for a call that raised: its HTTP code, `timeout` or `error`."""
    if isinstance(exc, (requests.Timeout, TimeoutError)) or "Timeout" in type(exc).__name__:
        return TIMEOUT
    response = getattr(exc, "response", None)
    for code in (getattr(response, "status_code", None), getattr(exc, "status_code", None)):
        if isinstance(code, int) and 100 <= code <= 599:
            return str(code)
    return ERROR


class ChatCompletions:
    """POST {base_url}/chat/completions with requests, each call tracked."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        metrics: GatewayMetrics,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.metrics = metrics
        self.timeout = timeout
        self.session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def create(self, model: str, messages: list, *, timeout=None, **params) -> dict:
        """One answer. `params` go into the body (temperature, max_tokens...); `timeout` never does.

        Raises requests.HTTPError for a non-2xx answer, requests.Timeout when the
        timeout passes; both are recorded first.
        """
        body = {"model": model, "messages": messages, **params}
        with self.metrics.track(model) as call:
            response = self.session.post(self.url, json=body, headers=self._headers, timeout=timeout or self.timeout)
            call.status = str(response.status_code)
            response.raise_for_status()
            answer = response.json()
            call.usage(answer.get("usage"))
            return answer

    def stream(self, model: str, messages: list, *, include_usage: bool = True, timeout=None,
               **params) -> Iterator[dict]:
        """The answer's chunks as they arrive; the request is sent on the first iteration.

        With `include_usage` (default) the body asks for `stream_options.include_usage`,
        and the tokens are read from the final chunk's `usage`. A server that sends
        no usage leaves the call without tokens: its request, status and latency are
        still recorded, but tokens/s and spend undercount. Latency runs until the
        stream ends. A consumer that stops early records the call with the status it
        had (the answer arrived, it was not read to the end).
        """
        body = {"model": model, "messages": messages, **params, "stream": True}
        if include_usage:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        with self.metrics.track(model) as call:
            with self.session.post(self.url, json=body, headers=self._headers, timeout=timeout or self.timeout,
                                   stream=True) as response:
                call.status = str(response.status_code)
                response.raise_for_status()
                for chunk in server_sent_events(response.iter_lines(decode_unicode=True)):
                    if isinstance(chunk.get("error"), dict):
                        raise StreamError(str(chunk["error"].get("message") or chunk["error"]))
                    call.usage(chunk.get("usage"))
                    yield chunk


def server_sent_events(lines: Iterable[str]) -> Iterator[dict]:
    """JSON payloads of an OpenAI-style event stream, up to `data: [DONE]`."""
    data: list[str] = []
    for line in itertools.chain(lines, [""]):  # a last blank line ends an unterminated event
        if line:
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            continue
        if not data:
            continue
        payload, data = "\n".join(data), []
        if payload.strip() == "[DONE]":
            return
        yield json.loads(payload)
