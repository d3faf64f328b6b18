"""Docker-mode tests: the real compose/ stack on a real Docker engine (`make test-docker`). They run only with
LABKIT_MODE=docker; in CI, LABKIT_COMPOSE_OVERRIDE=ci/docker-compose.ci.yml swaps in the images built here."""

import os

collect_ignore_glob = [] if os.environ.get("LABKIT_MODE") == "docker" else ["test_*.py"]
