"""Both real client libraries over HTTP against the scripted server."""
from __future__ import annotations

import pytest
from fake_llm_server import Reply, free_port

from designer.llm.backends import choose_backend, make_client
from designer.llm.client import RetryPolicy
from designer.llm.errors import (LLMAuthenticationError, LLMServerError, LLMTimeoutError,
                                 LLMUnavailableError)
from designer.llm.litellm_client import LiteLLMClient
from designer.llm.openai_client import OpenAIClient

HI = [{"role": "user", "content": "say hi"}]
CLIENTS = [pytest.param(OpenAIClient, "fake-model", id="openai-sdk"),
           pytest.param(LiteLLMClient, "openai/fake-model", id="litellm")]


def complete(client, model, timeout=5.0, **kw):
    return client.complete(HI, model=model, temperature=0.3, timeout=timeout, **kw)


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_completion_has_text_tokens_latency(server, fast_retry, cls, model):
    server.push(Reply(content="hello", prompt_tokens=11, completion_tokens=3))
    c = complete(cls(api_base=server.url, retry=fast_retry), model)
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.model) == ("hello", 11, 3, model)
    assert c.latency_seconds > 0 and c.cost_usd == 0.0
    body = server.requests[0].body
    assert body["model"] == "fake-model" and body["messages"] == HI and body["temperature"] == 0.3


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_429_and_500_are_retried(server, fast_retry, cls, model):
    server.push(429, 503, "finally")
    assert complete(cls(api_base=server.url, retry=fast_retry), model).text == "finally"
    assert len(server.requests) == 3


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_persistent_5xx_gives_up_with_attempt_count(server, fast_retry, cls, model):
    server.push(500, 500, 500, "never reached")
    with pytest.raises(LLMServerError, match=r"HTTP 500.*gave up after 3 attempts") as e:
        complete(cls(api_base=server.url, retry=fast_retry), model)
    assert e.value.status == 500 and server.pending == 1


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_slow_answer_times_out_then_retry_succeeds(server, fast_retry, cls, model):
    server.push(Reply(content="late", delay=1.5), "on time")
    assert complete(cls(api_base=server.url, retry=fast_retry), model, timeout=0.4).text == "on time"


def test_slow_answers_end_in_a_clear_timeout_error(server):
    server.push(Reply(content="late", delay=1.0), Reply(content="late", delay=1.0))
    client = OpenAIClient(api_base=server.url, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(LLMTimeoutError, match=r"did not answer within 0.3s.*gave up after 2"):
        complete(client, "m", timeout=0.3)


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_dead_endpoint_is_one_clear_error(fast_retry, cls, model):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMUnavailableError) as e:
        complete(cls(api_base=url, retry=fast_retry), model)
    message = str(e.value)
    assert f"cannot reach the LLM at {url}" in message
    assert "Connection refused" in message and "start the server or fix --api-base" in message


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_bad_key_is_not_retried_and_not_echoed(server, fast_retry, monkeypatch, cls, model):
    key = "sk-test-0123456789abcdefSECRET"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    server.push(Reply(status=401, error_message=f"Incorrect API key provided: {key}"))
    with pytest.raises(LLMAuthenticationError, match="OPENAI_API_KEY") as e:
        complete(cls(api_base=server.url, retry=fast_retry), model)
    assert key not in str(e.value) and len(server.requests) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"  # the key came from env


@pytest.mark.parametrize("cls, model", CLIENTS)
def test_json_schema_is_sent_as_response_format(server, fast_retry, cls, model):
    server.push('{"rationale": "r", "code": "x"}')
    schema = {"name": "agent_proposal", "schema": {"type": "object"}}
    complete(cls(api_base=server.url, retry=fast_retry), model, json_schema=schema)
    assert server.requests[0].body["response_format"] == {"type": "json_schema", "json_schema": schema}


def test_local_server_needs_no_key(server, fast_retry, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.push("ok")
    assert complete(OpenAIClient(api_base=server.url, retry=fast_retry), "m").text == "ok"
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_backend_rule():
    assert choose_backend("gpt-4o-mini", None) == "openai"
    assert choose_backend("openai/local", "http://127.0.0.1:8000/v1") == "openai"
    assert choose_backend("openai/gpt-4o", None) == "litellm"
    assert choose_backend("anthropic/claude-3-5-haiku", None) == "litellm"
    assert choose_backend("ollama/qwen2.5", "http://127.0.0.1:11434") == "litellm"
    assert isinstance(make_client("openai/x", "http://h/v1"), OpenAIClient)
    assert isinstance(make_client("openai/x", "http://h/v1", backend="litellm"), LiteLLMClient)


def test_openai_client_strips_provider_prefix_and_prices(server, fast_retry):
    server.push(Reply(content="ok", prompt_tokens=1_000_000, completion_tokens=500_000))
    client = OpenAIClient(api_base=server.url, retry=fast_retry, prices=(1.0, 4.0))
    c = complete(client, "openai/local-model")
    assert server.requests[0].body["model"] == "local-model" and c.model == "openai/local-model"
    assert c.cost_usd == pytest.approx(3.0)


def test_retry_policy_honours_retry_after_within_cap():
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=5.0)
    assert policy.delay(0, retry_after=2.0) == 2.0
    assert policy.delay(0, retry_after=60.0) == 5.0
    assert all(0 <= policy.delay(3) <= 5.0 for _ in range(50))
