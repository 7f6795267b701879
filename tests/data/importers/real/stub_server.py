"""A tiny OpenAI-compatible chat server on 127.0.0.1 for the fixture runs (stdlib only).

It answers POST .../chat/completions like a real provider does in the one way that matters
here: the `model` field of the reply is the name the server serves, not the name the client
asked for (`judge-a` is served as `judge-a-2024-07-18`, as OpenAI serves `gpt-4o-mini` as
`gpt-4o-mini-2024-07-18`). Each judge grades in its own fixed way so that a verdict given to
the wrong judge shows: judge-a always says GRADE: C, judge-b always GRADE: I, judge-c says C
when the answer it is shown contains the word "Paris", "4" or "blue", else I.

Usage: python stub_server.py PORT
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVED = {
    "judge-a": "judge-a-2024-07-18",
    "judge-b": "judge-b-served",
    "judge-c": "judge",
}


def grade(model: str, prompt: str) -> str:
    if model == "judge-a":
        return "The answer is fine.\n\nGRADE: C"
    if model == "judge-b":
        return "The answer is wrong.\n\nGRADE: I"
    answer = prompt.split("[Submission]:", 1)[-1].split("***", 1)[0]
    good = any(word in answer for word in ("Paris", "4", "blue"))
    return f"Checked.\n\nGRADE: {'C' if good else 'I'}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self.send_error(404, f"no such endpoint {self.path}")
            return
        model = str(request.get("model", ""))
        prompt = "\n".join(
            m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in request.get("messages", [])
        )
        text = grade(model, prompt)
        body = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": SERVED.get(model, model + "-served"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("stub: " + format % args + "\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
