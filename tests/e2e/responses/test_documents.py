"""PDFs as the clients people use send them, in their default modes, through `python -m app`:
openai-python (chat `file` parts, Responses `input_file` by data and by URL, a tool's PDF in a
`function_call_output`), openai-node, pydantic-ai (`BinaryContent`, `DocumentUrl`),
LangChain's file block, and the Vercel AI SDK v6 and v7 (a file part through `openai(model)`
and `openai.chat(model)`, and a tool loop whose tool returns a PDF). The upstream fake says
what reached the model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from openai.types.responses import ResponseInputFileParam
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import BinaryContent, DocumentUrl
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.profiles.openai import OpenAIModelProfile
from pydantic_ai.providers.openai import OpenAIProvider

from tests.documents import REPORT_TEXTS, report_pdf
from tests.e2e.clients import async_sdk
from tests.e2e.fakes.openai_compat import FakeUpstream, Reply, ToolCall
from tests.e2e.responses.conftest import Fakes
from tests.e2e.responses.test_vercel_ai import CLIENTS, VERSIONS, node_clients

pytestmark = pytest.mark.e2e

__all__ = ["node_clients"]  # a fixture, used below

QUESTION = "What is the total due?"
ANSWER = "1,280.00 EUR."
PAGE_TEXTS = [text for text in REPORT_TEXTS if text]
PAGE_TYPES = ["image/png", "image/jpeg", "image/png"]


def what_the_model_saw(body: dict[str, Any], message: int = -1) -> tuple[list[str], list[str]]:
    """The texts and the image types of one message the upstream got."""
    content = body["messages"][message]["content"]
    assert isinstance(content, list), content
    texts = [part["text"] for part in content if part["type"] == "text"]
    images = [
        part["image_url"]["url"].split(";")[0].removeprefix("data:")
        for part in content
        if part["type"] == "image_url"
    ]
    return texts, images


def assert_the_report_reached_the_model(body: dict[str, Any], message: int = -1) -> None:
    texts, images = what_the_model_saw(body, message)
    assert texts[-len(PAGE_TEXTS) :] == PAGE_TEXTS
    assert images == PAGE_TYPES


# openai-python


def test_openai_python_chat_with_a_file_part(sync_client: openai.OpenAI, fakes: Fakes) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER))

    completion = sync_client.chat.completions.create(
        model="openai",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "file",
                        "file": {"filename": "report.pdf", "file_data": report_pdf().data_uri},
                    },
                ],
            }
        ],
    )

    assert completion.choices[0].message.content == ANSWER
    [sent] = upstream.received
    assert_the_report_reached_the_model(sent.body)


@pytest.mark.parametrize("by", ["data", "url"])
def test_openai_python_responses_with_an_input_file(
    sync_client: openai.OpenAI, fakes: Fakes, by: str
) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER))
    file: ResponseInputFileParam = {"type": "input_file"}
    if by == "data":
        file["filename"], file["file_data"] = "report.pdf", report_pdf().data_uri
    else:  # served as text, named without an ending: the bytes say what it is
        file["file_url"] = fakes["images"].put("report", report_pdf().data, "text/plain")

    with sync_client.responses.stream(
        model="openai",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": QUESTION}, file]},
        ],
    ) as stream:
        final = stream.get_final_response()

    assert final.output_text == ANSWER
    [sent] = upstream.received
    assert_the_report_reached_the_model(sent.body)


def test_openai_python_responses_through_a_job_provider(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    response = sync_client.responses.create(
        model="masterpiecex",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": QUESTION},
                    {"type": "input_file", "filename": "r.pdf", "file_data": report_pdf().data_uri},
                ],
            }
        ],
    )

    assert response.output_text
    [query] = fakes["masterpiecex"].requests("POST", "/v2/llm/image_query")
    assert query.json["userPrompt"] == "\n".join([QUESTION, *PAGE_TEXTS])
    assert len(query.json["imageUrls"]) == 3


def test_a_tool_s_pdf_in_a_function_call_output_reaches_the_model(
    sync_client: openai.OpenAI, fakes: Fakes
) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER))

    sync_client.responses.create(
        model="openai",
        input=[
            {"role": "user", "content": "Fetch the invoice and tell me its total."},
            {"type": "function_call", "call_id": "call_1", "name": "fetch", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": [
                    {"type": "input_text", "text": "Here it is."},
                    {"type": "input_file", "filename": "i.pdf", "file_data": report_pdf().data_uri},
                ],
            },
        ],
    )

    [sent] = upstream.received
    roles = [message["role"] for message in sent.body["messages"]]
    assert roles == ["user", "assistant", "tool", "user"]
    assert sent.body["messages"][2]["content"] == "Here it is."
    assert_the_report_reached_the_model(sent.body)


def test_a_file_id_is_refused_saying_there_is_no_files_api(sync_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sync_client.responses.create(
            model="openai",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": QUESTION},
                        {"type": "input_file", "file_id": "file-abc123"},
                    ],
                }
            ],
        )

    error = refused.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("unsupported_parameter", "input[0].content[1]")
    assert "Files API" in error["message"]


# pydantic-ai


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["responses", "chat"])
@pytest.mark.parametrize("how", ["BinaryContent", "DocumentUrl"])
async def test_pydantic_ai_with_a_document(
    all_gateway: str, fakes: Fakes, api: str, how: str
) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER))
    document: BinaryContent | DocumentUrl
    if how == "BinaryContent":
        document = BinaryContent(data=report_pdf().data, media_type="application/pdf")
    else:
        document = DocumentUrl(
            url=fakes["images"].put("report.pdf", report_pdf().data, "application/pdf")
        )

    async with async_sdk(all_gateway) as client:
        provider = OpenAIProvider(openai_client=client)
        model: OpenAIResponsesModel | OpenAIChatModel
        if api == "responses":  # a URL goes on as `file_url`
            model = OpenAIResponsesModel("openai", provider=provider)
        else:  # a URL goes on in `file_data` with this setting (else pydantic-ai downloads it)
            profile = OpenAIModelProfile(openai_chat_supports_file_urls=True)
            model = OpenAIChatModel("openai", provider=provider, profile=profile)
        result = await PydanticAgent(model).run([QUESTION, document])

    assert result.output == ANSWER
    [sent] = upstream.received
    assert_the_report_reached_the_model(sent.body)


# LangChain


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat", "responses"])
def test_langchain_with_a_file_block(all_gateway: str, fakes: Fakes, responses_api: bool) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER))
    chat = ChatOpenAI(
        model="openai",
        base_url=f"{all_gateway}/v1",
        api_key="test",
        use_responses_api=responses_api,
    )

    answer = chat.invoke(
        [
            HumanMessage(
                content=[
                    {"type": "text", "text": QUESTION},
                    {
                        "type": "file",
                        "base64": report_pdf().base64,
                        "mime_type": "application/pdf",
                        "filename": "report.pdf",
                    },
                ]
            )
        ]
    )

    assert answer.text == ANSWER
    [sent] = upstream.received
    assert_the_report_reached_the_model(sent.body)


# The Vercel AI SDK


def run_documents_client(clients: Path, version: str, url: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(clients / version / "documents.mjs"), url, "openai", report_pdf().base64],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("version", VERSIONS)
def test_the_ai_sdk_with_a_pdf_part_and_a_tool_that_returns_one(
    node_clients: Path, all_gateway: str, fakes: Fakes, version: str
) -> None:
    upstream: FakeUpstream = fakes["openai"]
    call = ToolCall("call_invoice", "fetch_invoice", "{}")
    upstream.script(
        "upstream-vision",
        Reply(text=ANSWER),  # openai(model)
        Reply(text=ANSWER),  # openai.chat(model)
        Reply(text="", tool_calls=[call]),  # the loop's first step asks for the invoice
        Reply(text=ANSWER),  # and the second reads it
    )

    result = run_documents_client(node_clients, version, all_gateway)

    assert (result["responses"], result["chat"], result["loop"]) == (ANSWER, ANSWER, ANSWER)
    assert result["steps"] == 2
    responses, chat, _, loop = (received.body for received in upstream.received)
    assert_the_report_reached_the_model(responses)
    assert_the_report_reached_the_model(chat)
    assert [message["role"] for message in loop["messages"]] == [
        "user",
        "assistant",
        "tool",
        "user",
    ]
    assert_the_report_reached_the_model(loop)
    assert CLIENTS.is_dir()


# The openai Node SDK


@pytest.fixture(scope="session")
def openai_node(node_clients: Path) -> Path:
    """The pinned SDK installed from its lock file (`npm ci`) once a session."""
    npm = shutil.which("npm")
    assert npm is not None  # `node_clients` checked it
    folder = node_clients / "openai-js"  # the same SDK the browser tests load
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in tests/clients/openai-js failed:\n{done.stderr[-2000:]}")
    return folder


def test_openai_node_with_a_file_part_and_an_input_file(
    openai_node: Path, all_gateway: str, fakes: Fakes
) -> None:
    upstream: FakeUpstream = fakes["openai"]
    upstream.script("upstream-vision", Reply(text=ANSWER), Reply(text=ANSWER))
    node = shutil.which("node")
    assert node is not None

    done = subprocess.run(
        [node, str(openai_node / "documents.mjs"), all_gateway, "openai", report_pdf().base64],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"chat": ANSWER, "responses": ANSWER}
    for sent in upstream.received:
        assert_the_report_reached_the_model(sent.body)
