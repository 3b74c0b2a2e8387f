import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { aptCommand, npmCommand, parseBuildFile, pipCommand, readyCommand } from "../src/build-file.js";
import { BuildFileError, logicalLines, splitWords, stripComment } from "../src/build-file-lines.js";

const EXAMPLE = `# wrenn.template
FROM base                  # an image, or: FROM template <name>
NAME web-app
TAG v1 stable
CPU 1
MEMORY 512
ENV GREETING="hello there" LANG=C.UTF-8
APT jq curl
PIP requests
NPM -g typescript
COPY ./app /opt/app/
COPY --user=root --mode=0644 conf/a.conf conf/b.conf /etc/app/
WORKDIR /opt/app
USER user
RUN make build
RUN --user=root chown -R user /opt/app && \\
    echo "# not a comment" > /tmp/x
START python3 -m http.server 8000
READY ss -Htln sport = :8000 | grep -q .     # or READY port 8000
`;

describe("parseBuildFile", () => {
  it("turns every instruction into the spec, in order", () => {
    const spec = parseBuildFile(EXAMPLE);
    expect(spec).toEqual({
      from: { image: "base" },
      name: "web-app",
      tags: ["v1", "stable"],
      vcpus: 1,
      memoryMiB: 512,
      steps: [
        { type: "env", vars: { GREETING: "hello there", LANG: "C.UTF-8" } },
        { type: "run", command: aptCommand(["jq", "curl"]), user: "root" },
        { type: "run", command: pipCommand(["requests"]), user: "root" },
        { type: "run", command: npmCommand(["-g", "typescript"]), user: "root" },
        { type: "copy", src: "./app", dest: "/opt/app/" },
        { type: "copy", src: "conf/a.conf", dest: "/etc/app/", user: "root", mode: "0644" },
        { type: "copy", src: "conf/b.conf", dest: "/etc/app/", user: "root", mode: "0644" },
        { type: "workdir", path: "/opt/app" },
        { type: "user", name: "user" },
        { type: "run", command: "make build" },
        { type: "run", command: 'chown -R user /opt/app && echo "# not a comment" > /tmp/x', user: "root" },
      ],
      startCmd: "python3 -m http.server 8000",
      readyCmd: "ss -Htln sport = :8000 | grep -q .",
    });
  });

  it("takes FROM template <name>, READY forms and a ready timeout", () => {
    expect(parseBuildFile("FROM template web-app\nREADY --timeout=30 port 8000")).toEqual({
      from: { template: "web-app" },
      readyTimeoutSec: 30,
      readyCmd: "ss -Htln 'sport = :8000' | grep -q .",
    });
    expect(readyCommand("url http://127.0.0.1:8000/health", 1)).toBe(
      "curl -fsS -o /dev/null http://127.0.0.1:8000/health",
    );
    expect(() => readyCommand("file /tmp/ready flag", 1)).toThrow(/READY file: expected one path/);
    expect(readyCommand("file '/tmp/a b'", 1)).toBe("test -e '/tmp/a b'");
    expect(parseBuildFile("")).toEqual({});
  });

  it("writes the package helpers as root commands with quoted names", () => {
    expect(aptCommand(["jq", "curl"])).toBe(
      "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq curl",
    );
    expect(pipCommand(["requests==2.32.3", "a b"])).toContain(
      "pip3 install --break-system-packages requests==2.32.3 'a b'",
    );
    expect(npmCommand(["typescript"])).toMatch(/&& npm install typescript$/);
    // Without -g, NPM installs as the current user (in its workdir).
    expect(parseBuildFile("NPM left-pad").steps).toEqual([
      { type: "run", command: npmCommand(["left-pad"]) },
    ]);
  });

  it("the generated helper commands are valid bash", () => {
    for (const cmd of [aptCommand(["jq"]), pipCommand(["x"]), npmCommand(["-g", "y"])]) {
      expect(() => execFileSync("bash", ["-n", "-c", cmd])).not.toThrow();
    }
  });

  it("names the line of each mistake", () => {
    const cases: [string, RegExp][] = [
      ["FROM base\n\nFRM x", /^line 3: unknown instruction "FRM"/],
      ["ENV GREETING", /^line 1: ENV: "GREETING" is not KEY=VALUE/],
      ['ENV A="unterminated', /^line 1: unterminated " quote/],
      ["CPU two", /^line 1: CPU: expected one whole number/],
      ["MEMORY 0", /^line 1: MEMORY/],
      ["FROM base\nFROM base", /^line 2: FROM may appear only once/],
      ["FROM template", /^line 1: FROM: expected/],
      ["COPY onlyone", /^line 1: COPY: expected <src>… <dest>/],
      ["COPY --owner=x a b", /^line 1: COPY: unknown flag --owner/],
      ["COPY --mode=999 a b", /^line 1: COPY: --mode=999/],
      ["USER Root", /^line 1: USER: "Root" is not a Linux user name/],
      ["RUN", /^line 1: RUN: missing its argument/],
      ["READY port 99999", /^line 1: READY port/],
      ["# c\nRUN echo \\", /^line 2: the file ends inside a continued line/],
    ];
    for (const [source, message] of cases) {
      let caught: unknown;
      try {
        parseBuildFile(source);
      } catch (err) {
        caught = err;
      }
      expect(caught, source).toBeInstanceOf(BuildFileError);
      expect((caught as BuildFileError).message, source).toMatch(message);
    }
  });
});

describe("build file lines", () => {
  it("joins continuations (skipping comment lines inside them) and keeps the first line number", () => {
    expect(logicalLines("\n# top\nRUN a \\\n  # inside\n  && b\r\nUSER user\n")).toEqual([
      { line: 3, text: "RUN a && b" },
      { line: 6, text: "USER user" },
    ]);
    // An escaped backslash at the end does not continue the line.
    expect(logicalLines("RUN echo \\\\\nUSER x")).toEqual([
      { line: 1, text: "RUN echo \\\\" },
      { line: 2, text: "USER x" },
    ]);
  });

  it("cuts comments only at a # after whitespace and outside quotes", () => {
    expect(stripComment("RUN echo 'a # b' # c")).toBe("RUN echo 'a # b' ");
    const braces = 'RUN echo "#x" $' + "{#v}#y";
    expect(stripComment(braces)).toBe(braces);
    expect(stripComment("RUN echo \\# z")).toBe("RUN echo \\# z");
  });

  it("splits words with shell quoting", () => {
    expect(splitWords(`A="hello there" B='it''s' C=a\\ b D="q\\"q"`, 1)).toEqual([
      "A=hello there",
      "B=its",
      "C=a b",
      'D=q"q',
    ]);
    expect(splitWords(`""  x`, 1)).toEqual(["", "x"]);
  });
});
