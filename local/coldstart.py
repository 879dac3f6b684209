"""The seed's stack doing a function's init, for `make coldstart` to compare with: boto3 clients
for DynamoDB, Kinesis and KMS and a FastAPI app, then the first Runtime API `next` (as the
Lambda runtime interface client makes it). The stub never answers; the harness kills the process."""
import os
import urllib.request

import boto3
from fastapi import FastAPI

endpoint = os.environ.get("AWS_ENDPOINT_URL")
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
kinesis = boto3.client("kinesis", endpoint_url=endpoint)
kms = boto3.client("kms", endpoint_url=endpoint)

app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok"}


urllib.request.urlopen(f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/next", timeout=60)
