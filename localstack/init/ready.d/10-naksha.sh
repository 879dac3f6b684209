#!/bin/sh
# LocalStack ready hook. Provisioning is done from the host by `make up`, which reads
# template.yaml (naksha-local provision); this hook only says so in LocalStack's log.
echo "naksha: LocalStack is ready; run 'make up' on the host to provision it from template.yaml"
