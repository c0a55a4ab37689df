# The reference FastAPI server (test/refserver) for the compose demo. It launches
# instances in the DeepStream container through the Docker socket (docker exec).
FROM docker:27-cli AS docker-cli

FROM python:3.11-slim
# The versions the project is tested with (Debian 12 packages).
RUN pip install --no-cache-dir "fastapi==0.92.*" "uvicorn==0.17.6" "websockets==10.4" \
      "pydantic==1.10.*" "httpx==0.23.*"
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY test/refserver/ /srv/test/refserver/
WORKDIR /srv
EXPOSE 8000
CMD ["python3", "-m", "uvicorn", "refserver.app:app", "--app-dir", "/srv/test", \
     "--host", "0.0.0.0", "--port", "8000", "--ws", "websockets", "--ws-max-size", "67108864"]
