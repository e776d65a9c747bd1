"""The multi-node deployment recipes in ``infra/deploy`` (see its README.md).

What runs here, without the internet and without starting Spark:

* every YAML file (pod templates, RBAC, ConfigMap, Helm values, compose file) parses and
  has the keys the recipe relies on, and the files agree with each other (container
  names, service accounts, paths, the master URL);
* every ``RISK_*`` variable the recipes name is a field of ``Settings``, every
  ``AIRFLOW__SECTION__KEY`` an option of the installed Airflow's configuration, every
  ``MLFLOW_*`` one the installed MLflow reads, every ``SPARK_*`` of the spark-env
  templates one the installed Spark reads;
* every Spark property is a name the installed Spark, Delta or Hadoop knows, and the
  properties load through ``RISK_SPARK_CONF`` into the session settings
  (``core.spark.spark_conf``) with no credential among them;
* ``riskctl submit`` builds its spark-submit with the recipe's master, the executors'
  Python of its ``RISK_SPARK_CONF`` as ``--conf`` and no ``--py-files`` (the job's session
  ships the library itself), and hands ``SPARK_CONF_DIR`` through; ``riskctl airflow``
  keeps a PostgreSQL metadata connection from the environment;
* the image's entry point assembles the executor and driver commands Spark on Kubernetes
  expects (with stand-in ``java`` and ``spark-submit``);
* (slow) on a real PostgreSQL server: the databases and roles of ``postgres-init.sh``,
  ``airflow db migrate`` with the recipe's ``postgresql+psycopg2`` connection, and an
  MLflow tracking and registry store on the recipe's ``postgresql+psycopg2`` URI (the
  drivers, psycopg2-binary and asyncpg, are in the ``dev`` extra: a missing one fails).

What cannot be tested here: building the image (no Docker daemon), the compose file and
the Helm chart running (no Docker, no Kubernetes), a standalone master and workers on
several hosts (tests/test_faults.py runs a master and two workers on loopback), S3 itself
(no network; the S3A jars are not in ./jars), CeleryExecutor and KubernetesExecutor
(their providers are not installed).
"""

from __future__ import annotations

import configparser
import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pyspark
import pytest
import yaml
from conftest import psql

from riskcontrol.core.config import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "infra" / "deploy"
STANDALONE = DEPLOY / "spark-standalone"
K8S = DEPLOY / "kubernetes"
PG = DEPLOY / "postgres"
S3 = DEPLOY / "s3"
SPARK_HOME = Path(pyspark.__file__).parent
SPARK_JARS = SPARK_HOME / "jars"
VENV = Path(sys.executable).parent.parent
SITE_PACKAGES = Path(importlib.util.find_spec("yaml").origin).parent.parent
IMAGE_ROOT = Path("/opt/riskcontrol")  # where the Dockerfile puts the project

# Spark property files of the recipes (spark-defaults.conf format).
CONF_FILES = (
    STANDALONE / "spark-defaults.conf",
    K8S / "conf" / "spark-defaults.conf",
    S3 / "spark-s3a.conf",
)
# S3A options that are not in Hadoop's core-default.xml but in hadoop-aws 3.5.0's
# org.apache.hadoop.fs.s3a.Constants (checked by hand on the jar, see README).
S3A_ONLY_IN_HADOOP_AWS = {"fs.s3a.endpoint.region"}


def properties(path: Path) -> dict[str, str]:
    """A spark-defaults.conf file as a dict (comments and blank lines skipped)."""
    props = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            props[key] = value.strip()
    return props


def env_file(path: Path) -> dict[str, str]:
    """A KEY=VALUE file (platform.env.template, riskcontrol.env) as a dict."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]  # quoted as bash and systemd read it (JSON values)
            values[key.strip()] = value
    return values


def recipe_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@functools.cache
def jar_bytes(*patterns: str) -> bytes:
    """The class files and resources of the installed jars matching ``patterns``, as one
    byte string to search for property names (Scala config names are string constants)."""
    chunks = []
    for pattern in patterns:
        for jar in sorted(SPARK_JARS.glob(pattern)) + sorted((PROJECT_ROOT / "jars").glob(pattern)):
            with zipfile.ZipFile(jar) as zf:
                for name in zf.namelist():
                    if name.endswith((".class", ".xml", ".properties")):
                        chunks.append(zf.read(name))
    assert chunks, f"no jar matches {patterns}"
    return b"\n".join(chunks)


def spark_knows(name: str) -> bool:
    return name.encode() in jar_bytes(
        "spark-core_2.13-*.jar",
        "spark-catalyst_2.13-*.jar",
        "spark-sql_2.13-*.jar",
        "spark-kubernetes_2.13-*.jar",
        "spark-launcher_2.13-*.jar",
        "delta-spark_2.13-*.jar",
        "delta-storage-*.jar",
    )


@functools.cache
def hadoop_defaults() -> set[str]:
    """Property names of the installed Hadoop's core-default.xml."""
    (api,) = SPARK_JARS.glob("hadoop-client-api-*.jar")
    with zipfile.ZipFile(api) as zf:
        text = zf.read("core-default.xml").decode("utf-8")
    return set(re.findall(r"<name>([^<]+)</name>", text))


def hadoop_version() -> str:
    (api,) = SPARK_JARS.glob("hadoop-client-api-*.jar")
    return api.name.removeprefix("hadoop-client-api-").removesuffix(".jar")


# --- files parse and agree ------------------------------------------------------------------


def test_pod_templates_and_rbac_parse_and_agree_with_the_spark_conf():
    conf = properties(K8S / "conf" / "spark-defaults.conf")
    driver = yaml.safe_load((K8S / "driver-pod-template.yaml").read_text())
    executor = yaml.safe_load((K8S / "executor-pod-template.yaml").read_text())
    for pod, role in ((driver, "driver"), (executor, "executor")):
        assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
        assert [c["name"] for c in pod["spec"]["containers"]] == [
            conf[f"spark.kubernetes.{role}.podTemplateContainerName"]
        ]
        assert pod["spec"]["securityContext"]["runAsUser"] == 185
        # The image places the templates where the conf says.
        path = Path(conf[f"spark.kubernetes.{role}.podTemplateFile"])
        assert path == IMAGE_ROOT / (K8S / f"{role}-pod-template.yaml").relative_to(PROJECT_ROOT)

    (driver_box,) = driver["spec"]["containers"]
    assert driver_box["envFrom"] == [
        {"configMapRef": {"name": "riskcontrol-settings"}},
        {"secretRef": {"name": "riskcontrol-keys"}},
    ]
    assert driver["spec"]["serviceAccountName"] == "spark"
    # Executors get no keys: no Secret anywhere in their template.
    assert "secret" not in json.dumps(executor).lower()
    assert executor["spec"]["volumes"][0]["name"].startswith("spark-local-dir-")

    docs = list(yaml.safe_load_all((K8S / "spark-rbac.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding"]
    account, role, binding = docs
    assert (
        account["metadata"]["name"]
        == conf["spark.kubernetes.authenticate.driver.serviceAccountName"]
    )
    assert {"create", "delete", "list", "watch"} <= set(role["rules"][0]["verbs"])
    assert "pods" in role["rules"][0]["resources"]
    values = yaml.safe_load((K8S / "airflow-values.yaml").read_text())
    assert {s["name"] for s in binding["subjects"]} == {
        "spark",
        values["scheduler"]["serviceAccount"]["name"],
    }
    namespaces = {d["metadata"]["namespace"] for d in docs} | {
        s["namespace"] for s in binding["subjects"]
    }
    assert namespaces == {conf["spark.kubernetes.namespace"]}


def test_settings_configmap_is_strings_with_the_image_paths():
    cm = yaml.safe_load((K8S / "riskcontrol-settings.yaml").read_text())
    assert (cm["apiVersion"], cm["kind"], cm["metadata"]["name"]) == (
        "v1",
        "ConfigMap",
        "riskcontrol-settings",
    )
    data = cm["data"]
    # Kubernetes refuses a ConfigMap whose values are not strings ("64" not 64).
    assert all(isinstance(v, str) for v in data.values()), data
    assert data["RISK_SPARK_MASTER"].startswith("k8s://https://")
    assert data["RISK_ENV"] == "cluster"
    assert Path(data["SPARK_CONF_DIR"]) == IMAGE_ROOT / (K8S / "conf").relative_to(PROJECT_ROOT)
    assert (K8S / "conf" / "spark-defaults.conf").is_file()


def test_airflow_helm_values_parse_with_the_expected_keys():
    values = yaml.safe_load((K8S / "airflow-values.yaml").read_text())
    from importlib.metadata import version

    assert values["airflowVersion"] == version("apache-airflow")
    assert values["executor"] == "LocalExecutor"
    assert values["postgresql"] == {"enabled": False}
    assert values["data"] == {"metadataSecretName": "airflow-metadata"}
    assert values["images"]["airflow"]["repository"] == values["defaultAirflowRepository"]
    assert values["images"]["airflow"]["tag"] == values["defaultAirflowTag"]
    assert values["dags"] == {"persistence": {"enabled": False}, "gitSync": {"enabled": False}}
    env = {e["name"]: e["value"] for e in values["env"]}
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(IMAGE_ROOT / "dags")
    # extraEnv / extraEnvFrom are YAML held in strings (the chart templates them).
    extra_from = yaml.safe_load(values["extraEnvFrom"])
    assert extra_from == [
        {"configMapRef": {"name": "riskcontrol-settings"}},
        {"secretRef": {"name": "riskcontrol-keys"}},
    ]
    extra = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in yaml.safe_load(values["extraEnv"])
    }
    assert extra == {"SPARK_LOCAL_IP": "status.podIP", "SPARK_LOCAL_HOSTNAME": "status.podIP"}


def test_compose_file_parses_with_the_expected_services():
    compose = yaml.safe_load((PG / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "airflow-init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "mlflow",
    }
    commands = {name: s.get("command") for name, s in services.items()}
    assert commands["airflow-init"] == ["airflow", "db", "migrate"]
    assert commands["airflow-api-server"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["mlflow"][:2] == ["mlflow", "server"]
    project = {n: s for n, s in services.items() if n != "postgres"}
    # One image (the project's), one env file, for Airflow and MLflow alike.
    assert {s["image"] for s in project.values()} == {"registry.example.internal/riskcontrol:0.1.0"}
    assert {s["env_file"] for s in services.values()} == {"platform.env"}
    build = project["mlflow"]["build"]
    context = (PG / build["context"]).resolve()
    assert context == PROJECT_ROOT
    assert (context / build["dockerfile"]).resolve() == K8S / "Dockerfile"
    # Published ports only on loopback.
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    # The mounted files exist where the compose file says.
    mounts = [
        v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if v[0] in "./"
    ]
    assert mounts and all((PG / m).resolve().is_file() for m in mounts), mounts
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["airflow-api-server"]["depends_on"] == {
        "airflow-init": {"condition": "service_completed_successfully"}
    }


def test_dockerfile_installs_the_project_from_constraints():
    text = (K8S / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")
    instructions = [line.split(None, 1) for line in joined.splitlines() if line and line[0] != "#"]
    froms = [args for op, args in instructions if op == "FROM"]
    assert froms == [f"python:{sys.version_info.major}.{sys.version_info.minor}-slim-bookworm"]
    (install,) = [args for op, args in instructions if op == "RUN" and "-e ." in args]
    assert re.search(
        r"pip install --no-cache-dir -c constraints\.txt -e \. \$\{EXTRA_PACKAGES\}", install
    )
    copies = [args.split() for op, args in instructions if op == "COPY"]
    first_copy = copies[0]
    assert first_copy[:1] == ["constraints.txt"]
    # Everything copied exists in the project (the build context).
    for *sources, _dest in copies:
        for src in sources:
            assert (PROJECT_ROOT / src).exists(), src
    # Extra packages are pinned, and agree with constraints.txt if it pins them too.
    (extra,) = re.findall(r'ARG EXTRA_PACKAGES="([^"]*)"', text)
    pins = dict(p.split("==") for p in extra.split())
    assert set(pins) == {"psycopg2-binary", "asyncpg", "boto3"}
    constraints = dict(
        line.split("==", 1)
        for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for name, pinned in pins.items():
        assert constraints.get(name, pinned) == pinned, name
    env = dict(re.findall(r"(\w+)=(\S+)", joined.split("ENV", 1)[1].split("USER")[0]))
    assert Path(env["SPARK_HOME"]) == IMAGE_ROOT / SPARK_HOME.relative_to(VENV.parent)
    assert env["RISK_ENV"] == "cluster"
    assert "openjdk-17-jre-headless" in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/opt/entrypoint.sh"]' in text
    ignored = (K8S / "Dockerfile.dockerignore").read_text().split()
    assert {".env", ".venv", "data", "lakehouse", "mlflow.db", ".git"} <= set(ignored)
    # The host's class archive stays out (made for the host's paths); the image writes its
    # own once the jars are in, and the pods' user (not root) can read it.
    assert "jars/spark-classes.jsa" in ignored
    runs = [args for op, args in instructions if op == "RUN"]
    (archive,) = [r for r in runs if "riskcontrol.core.classcache jars" in r]
    assert "chmod 0444 jars/spark-classes.jsa" in archive
    order = [(op, args) for op, args in instructions if op in ("COPY", "RUN")]
    assert order.index(("RUN", archive)) > order.index(("COPY", "jars/ jars/"))


# --- variable names -------------------------------------------------------------------------


NAME = re.compile(r"\b((?:RISK|AIRFLOW|MLFLOW|SPARK)_[A-Z0-9_]*[A-Z0-9])\b")


def named_variables() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in recipe_files():
        for name in NAME.findall(path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(name, set()).add(path.relative_to(DEPLOY).as_posix())
    return found


def test_every_risk_variable_is_a_settings_field():
    """pydantic-settings maps RISK_<FIELD> (any case) to the field ``<field>``."""
    names = {n for n in named_variables() if n.startswith("RISK_")}
    assert {"RISK_SPARK_MASTER", "RISK_SPARK_CONF", "RISK_LAKEHOUSE_ROOT"} <= names
    fields = set(Settings.model_fields)
    assert sorted(n for n in names if n.removeprefix("RISK_").lower() not in fields) == []


def test_every_airflow_variable_is_an_airflow_option():
    """AIRFLOW__<SECTION>__<KEY> against the installed Airflow's config.yml."""
    spec = importlib.util.find_spec("airflow")
    (root,) = spec.submodule_search_locations
    config = yaml.safe_load((Path(root) / "config_templates" / "config.yml").read_text())
    names = {n for n in named_variables() if n.startswith("AIRFLOW_")}
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in names
    unknown = []
    for name in sorted(names):
        if name == "AIRFLOW_HOME":
            continue
        if not name.startswith("AIRFLOW__"):
            unknown.append(name)
            continue
        section, _, key = name.removeprefix("AIRFLOW__").lower().partition("__")
        if key not in config.get(section, {}).get("options", {}):
            unknown.append(name)
    assert unknown == []


def test_every_mlflow_variable_is_read_by_mlflow():
    """MLFLOW_* against the installed MLflow: its environment variables or the envvar of
    an ``mlflow server`` option."""
    (root,) = importlib.util.find_spec("mlflow").submodule_search_locations
    known = set(
        re.findall(
            r"^(MLFLOW_\w+) = _\w*EnvironmentVariable\(",
            (Path(root) / "environment_variables.py").read_text(),
            re.M,
        )
    )
    known |= set(
        re.findall(r'envvar="(MLFLOW_\w+)"', (Path(root) / "cli" / "__init__.py").read_text())
    )
    names = {n for n in named_variables() if n.startswith("MLFLOW_")}
    assert {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION"} <= names
    assert sorted(names - known) == []


def test_every_spark_variable_is_read_by_spark():
    """SPARK_* against the installed Spark's scripts and classes."""
    scripts = b"\n".join(
        p.read_bytes() for d in ("bin", "sbin") for p in (SPARK_HOME / d).iterdir() if p.is_file()
    )
    names = {n for n in named_variables() if n.startswith("SPARK_")}
    assert {"SPARK_WORKER_CORES", "SPARK_MASTER_HOST", "SPARK_CONF_DIR"} <= names
    unknown = [
        n
        for n in sorted(names)
        if n.encode() not in scripts
        and not spark_knows(n)
        and not n.startswith("SPARK_JAVA_OPT_")  # entrypoint.sh: Spark sets SPARK_JAVA_OPT_<n>
    ]
    assert unknown == []


# --- Spark properties -------------------------------------------------------------------------

PROPERTY = re.compile(r"^spark(\.[A-Za-z0-9_-]+)+$")
DYNAMIC = {  # names Spark and Delta build from parts: each part must be known
    re.compile(r"^spark\.delta\.logStore\.[a-z0-9]+\.impl$"): ("spark.delta.logStore.",),
    re.compile(r"^spark\.executorEnv\.\w+$"): ("spark.executorEnv.",),
    re.compile(r"^spark\.kubernetes\.authenticate\.driver\.serviceAccountName$"): (
        "spark.kubernetes.authenticate.driver",
        ".serviceAccountName",
    ),
}


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_spark_properties_are_known_names(path):
    props = properties(path)
    assert props
    unknown = []
    for key in props:
        assert PROPERTY.match(key), key
        if key.startswith("spark.hadoop."):
            name = key.removeprefix("spark.hadoop.")
            if name not in hadoop_defaults() | S3A_ONLY_IN_HADOOP_AWS:
                unknown.append(key)
        elif not spark_knows(key):
            parts = next((p for rx, p in DYNAMIC.items() if rx.match(key)), None)
            if parts is None or not all(spark_knows(part) for part in parts):
                unknown.append(key)
    assert unknown == []


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_spark_properties_load_through_risk_spark_conf(path, tmp_path, monkeypatch):
    """The form README.md gives: the file's properties as JSON in RISK_SPARK_CONF reach the
    settings unchanged and the session's conf on top of the pipeline's own."""
    from riskcontrol.core.spark import spark_conf, split_secrets

    props = properties(path)
    monkeypatch.setenv("RISK_SPARK_CONF", json.dumps(props))
    settings = Settings(home=tmp_path, env="test", spark_master="spark://master.test:7077")
    assert settings.spark_conf == props
    conf = spark_conf(settings)  # lists the jars; starts nothing
    assert {k: conf[k] for k in props} == props
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    # No credential in a recipe file. The provider list (class names) is held back like a
    # credential by the project's name rule (core.redact: "credential"), and set on the
    # running session instead of the command line, which works as well for S3A.
    builder, late = split_secrets(conf)
    provider = "spark.hadoop.fs.s3a.aws.credentials.provider"
    assert late == {k: v for k, v in props.items() if k == provider}
    assert set(props) - {provider} <= set(builder)
    if provider in props:
        assert re.fullmatch(r"[\w.]+(,[\w.]+)*", props[provider])
    if "spark.authenticate.secret" in props:  # only in the node-side file, as a placeholder
        assert props["spark.authenticate.secret"] == "change-me"


def test_s3_credentials_given_as_risk_spark_conf_stay_off_the_command_line(tmp_path, monkeypatch):
    from riskcontrol.core.spark import spark_conf, split_secrets

    props = properties(S3 / "spark-s3a.conf")
    credentials = {
        "spark.hadoop.fs.s3a.access.key": "change-me",
        "spark.hadoop.fs.s3a.secret.key": "change-me",
    }
    monkeypatch.setenv("RISK_SPARK_CONF", json.dumps({**props, **credentials}))
    builder, late = split_secrets(spark_conf(Settings(home=tmp_path, env="test")))
    provider = "spark.hadoop.fs.s3a.aws.credentials.provider"
    assert late == {**credentials, provider: props[provider]}
    assert not set(credentials) & set(builder)


def test_s3_recipe_matches_the_installed_hadoop_and_delta():
    import xml.etree.ElementTree as ET

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(S3 / "s3-jars.pom.xml").getroot()
    props = {p.tag.split("}")[1]: p.text for p in pom.find("m:properties", ns)}
    assert props["hadoop.version"] == hadoop_version() == "3.5.0"
    deps = [
        (d.findtext("m:groupId", namespaces=ns), d.findtext("m:artifactId", namespaces=ns))
        for d in pom.iterfind("m:dependencies/m:dependency", ns)
    ]
    assert deps == [("org.apache.hadoop", "hadoop-aws"), ("software.amazon.awssdk", "bundle")]
    assert (S3 / props["jars.dir"].replace("${project.basedir}/", "")).resolve() == (
        PROJECT_ROOT / "jars"
    )
    # The LogStore the conf names is the one Delta's storage jar has for S3.
    conf = properties(S3 / "spark-s3a.conf")
    (storage,) = (PROJECT_ROOT / "jars").glob("delta-storage-*.jar")
    with zipfile.ZipFile(storage) as zf:
        stores = {n for n in zf.namelist() if re.match(r"io/delta/storage/S3\w*LogStore\.class", n)}
    assert stores == {"io/delta/storage/S3SingleDriverLogStore.class"}
    assert conf["spark.delta.logStore.s3a.impl"] == "io.delta.storage.S3SingleDriverLogStore"


def test_s3a_classes_exist_once_the_s3_jars_are_fetched():
    """Runs only where ``mvn -f infra/deploy/s3/s3-jars.pom.xml dependency:copy-dependencies``
    put the S3A jars into ./jars (not done here: the AWS bundle is 690 MB)."""
    aws = next((PROJECT_ROOT / "jars").glob("hadoop-aws-*.jar"), None)
    bundle = next((PROJECT_ROOT / "jars").glob("bundle-*.jar"), None)
    if aws is None or bundle is None:
        pytest.skip("the S3A jars are not in ./jars (infra/deploy/s3/s3-jars.pom.xml)")
    classes = set()
    for jar in (aws, bundle):
        with zipfile.ZipFile(jar) as zf:
            classes |= {n.removesuffix(".class").replace("/", ".") for n in zf.namelist()}
    providers = properties(S3 / "spark-s3a.conf")["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert [p for p in providers.split(",") if p not in classes] == []
    assert aws.name == f"hadoop-aws-{hadoop_version()}.jar"


# --- Spark standalone -------------------------------------------------------------------------


def sourced(path: Path) -> dict[str, str]:
    """What a spark-env.sh exports, read by bash in an empty environment."""
    done = subprocess.run(
        ["env", "-i", "bash", "-c", f"set -e; . {shlex.quote(str(path))}; env -0"],
        check=True,
        capture_output=True,
        text=True,
    )
    env = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    return {k: v for k, v in env.items() if k not in ("PWD", "SHLVL", "_")}


def test_spark_env_templates_and_units_agree():
    master = sourced(STANDALONE / "spark-env.master.sh")
    worker = sourced(STANDALONE / "spark-env.worker.sh")
    risk = env_file(STANDALONE / "riskcontrol.env")
    url = f"spark://{master['SPARK_MASTER_HOST']}:{master['SPARK_MASTER_PORT']}"
    assert risk["RISK_SPARK_MASTER"] == url
    assert master["SPARK_CONF_DIR"] == worker["SPARK_CONF_DIR"] == risk["SPARK_CONF_DIR"]
    python = json.loads(risk["RISK_SPARK_CONF"])["spark.pyspark.python"]
    assert master["PYSPARK_PYTHON"] == worker["PYSPARK_PYTHON"] == python
    assert Path(python) == IMAGE_ROOT / ".venv" / "bin" / "python"
    assert int(worker["SPARK_WORKER_CORES"]) >= int(
        properties(STANDALONE / "spark-defaults.conf")["spark.executor.cores"]
    )

    spark_home = IMAGE_ROOT / SPARK_HOME.relative_to(VENV.parent)
    assert risk["SPARK_HOME"] == str(spark_home)
    core = next(SPARK_JARS.glob("spark-core_2.13-*.jar"))
    with zipfile.ZipFile(core) as zf:
        classes = set(zf.namelist())
    for unit, cls, args in (
        ("spark-master.service", "org.apache.spark.deploy.master.Master", None),
        ("spark-worker.service", "org.apache.spark.deploy.worker.Worker", [url]),
    ):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(STANDALONE / unit)
        argv = shlex.split(parser["Service"]["ExecStart"])
        assert argv[0] == str(spark_home / "bin" / "spark-class")
        assert (SPARK_HOME / "bin" / "spark-class").is_file()
        assert argv[1] == cls and cls.replace(".", "/") + ".class" in classes
        if args:
            assert argv[2:] == args
        else:
            assert argv[2:] == [
                "--host",
                master["SPARK_MASTER_HOST"],
                "--port",
                master["SPARK_MASTER_PORT"],
                "--webui-port",
                master["SPARK_MASTER_WEBUI_PORT"],
            ]


def test_riskctl_submit_targets_the_recipe_master_and_passes_spark_conf_dir(monkeypatch, tmp_path):
    """``riskctl submit`` hands the environment on, so spark-submit reads
    $SPARK_CONF_DIR/spark-defaults.conf (executor sizes, authentication, event logs)."""
    from riskcontrol.cli.main import submit_command

    risk = env_file(STANDALONE / "riskcontrol.env")
    monkeypatch.setenv("SPARK_CONF_DIR", risk["SPARK_CONF_DIR"])
    settings = Settings(
        home=tmp_path,
        env="test",
        spark_master=risk["RISK_SPARK_MASTER"],
        spark_driver_memory=risk["RISK_SPARK_DRIVER_MEMORY"],
    )
    argv, env = submit_command(settings, "analyze", "run-1", ("train_models",))
    assert argv[1:3] == ["--master", "spark://spark-master.example.internal:7077"]
    assert argv[argv.index("--driver-memory") + 1] == "8g"
    assert argv[-3:] == [str(PROJECT_ROOT / "jobs" / "analyze.py"), "run-1", "train_models"]
    assert "--py-files" not in argv
    assert env["SPARK_CONF_DIR"] == "/etc/riskcontrol/spark"


def test_riskctl_submit_gives_the_recipe_python_to_executors_and_ships_no_py_files(
    monkeypatch, tmp_path
):
    """The executors' interpreter is RISK_SPARK_CONF's spark.pyspark.python (riskcontrol.env),
    on the command line as --conf; the driver keeps this interpreter; the library reaches
    the executors from the job's session (addPyFile), never as --py-files or
    spark.submit.pyFiles (spark-submit would put it first on the driver's path too)."""
    from riskcontrol.cli.main import submit_command

    risk = env_file(STANDALONE / "riskcontrol.env")
    monkeypatch.setenv("RISK_SPARK_CONF", risk["RISK_SPARK_CONF"])  # as the env file sets it
    settings = Settings(home=tmp_path, env="test", spark_master=risk["RISK_SPARK_MASTER"])
    python = str(IMAGE_ROOT / ".venv" / "bin" / "python")
    assert settings.spark_conf == {"spark.pyspark.python": python}
    argv, _env = submit_command(settings, "collect", "run-1")
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    assert f"spark.pyspark.python={python}" in confs
    assert f"spark.pyspark.driver.python={sys.executable}" in confs
    assert "--py-files" not in argv
    assert not [a for a in argv if "pyFiles" in a or a.endswith(".zip")]
    # Nothing on the nodes' side names a zip either.
    defaults = properties(STANDALONE / "spark-defaults.conf")
    assert not {"spark.submit.pyFiles", "spark.pyspark.python"} & set(defaults)
    assert not (STANDALONE / "build_pyfiles.py").exists()


def test_riskctl_airflow_keeps_a_postgres_connection_from_the_environment(monkeypatch, tmp_path):
    from riskcontrol.cli.main import airflow_env

    conn = env_file(PG / "platform.env.template")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", conn)
    settings = Settings(home=tmp_path, env="test")
    assert airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == conn


# --- Kubernetes image entry point ------------------------------------------------------------


def fake_program(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$(basename "$0")" "$@"\n')
    path.chmod(0o755)


def test_entrypoint_builds_the_executor_and_driver_commands(tmp_path):
    fake_program(tmp_path / "java" / "bin" / "java")
    fake_program(tmp_path / "spark" / "bin" / "spark-submit")
    base = {
        "PATH": os.environ["PATH"],
        "SPARK_HOME": str(tmp_path / "spark"),
        "JAVA_HOME": str(tmp_path / "java"),
    }
    executor_env = {
        **base,
        "SPARK_JAVA_OPT_0": "-Dspark.driver.port=7078",
        "SPARK_JAVA_OPT_10": "-Dlast=1",
        "SPARK_JAVA_OPT_2": "-Dthird=1",
        "SPARK_EXECUTOR_MEMORY": "8g",
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@10.0.0.1:7078",
        "SPARK_EXECUTOR_ID": "3",
        "SPARK_EXECUTOR_CORES": "2",
        "SPARK_APPLICATION_ID": "spark-app-1",
        "SPARK_EXECUTOR_POD_IP": "10.0.0.9",
        "SPARK_RESOURCE_PROFILE_ID": "0",
        "SPARK_EXECUTOR_POD_NAME": "riskcontrol-exec-3",
    }
    entry = str(K8S / "entrypoint.sh")
    out = subprocess.run(
        [entry, "executor"], env=executor_env, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    cls = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
    assert out == [
        "java",
        "-Dspark.driver.port=7078",
        "-Dthird=1",
        "-Dlast=1",
        "-Xms8g",
        "-Xmx8g",
        "-cp",
        f"{tmp_path}/spark/jars/*",
        cls,
        "--driver-url",
        "spark://CoarseGrainedScheduler@10.0.0.1:7078",
        "--executor-id",
        "3",
        "--cores",
        "2",
        "--app-id",
        "spark-app-1",
        "--hostname",
        "10.0.0.9",
        "--resourceProfileId",
        "0",
        "--podName",
        "riskcontrol-exec-3",
    ]
    # The installed Spark has that backend and takes those options.
    (kube,) = SPARK_JARS.glob("spark-kubernetes_2.13-*.jar")
    with zipfile.ZipFile(kube) as zf:
        stem = cls.replace(".", "/")
        backend = b"".join(zf.read(n) for n in zf.namelist() if n.startswith(stem))
    options = [a for a in out if a.startswith("--") and a != "--"]
    assert [o for o in options if o.encode() not in backend] == []

    driver = subprocess.run(
        [entry, "driver", "--properties-file", "/opt/spark/conf/spark.properties", "x.py"],
        env={**base, "SPARK_DRIVER_BIND_ADDRESS": "10.0.0.5"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert driver == [
        "spark-submit",
        "--conf",
        "spark.driver.bindAddress=10.0.0.5",
        "--conf",
        "spark.executorEnv.SPARK_DRIVER_POD_IP=10.0.0.5",
        "--deploy-mode",
        "client",
        "--properties-file",
        "/opt/spark/conf/spark.properties",
        "x.py",
    ]
    other = subprocess.run(
        [entry, "echo", "airflow", "scheduler"],
        env=base,
        check=True,
        capture_output=True,
        text=True,
    )
    assert other.stdout == "airflow scheduler\n"


def test_shell_recipes_are_valid_bash():
    scripts = [p for p in recipe_files() if p.suffix == ".sh"]
    assert len(scripts) == 4
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True)
    for script in (K8S / "entrypoint.sh", PG / "postgres-init.sh"):
        assert os.access(script, os.X_OK), script


def test_templates_hold_placeholders_not_secrets():
    """Every credential-looking value in the recipes is the placeholder ``change-me``."""
    secretish = re.compile(r"(PASSWORD|SECRET|_KEY|FERNET|TOKEN)", re.I)
    offenders = []
    for path in (PG / "platform.env.template", STANDALONE / "riskcontrol.env"):
        for key, value in env_file(path).items():
            if secretish.search(key) and value != "change-me":
                offenders.append(f"{path.name}:{key}")
    for path in CONF_FILES:
        for key, value in properties(path).items():
            if ("secret" in key or key.endswith(".key")) and value != "change-me":
                offenders.append(f"{path.name}:{key}")
    assert offenders == []


# --- Airflow and MLflow on PostgreSQL (a real server) -------------------------------------------


def test_bare_postgresql_urls_need_psycopg3_under_the_installed_sqlalchemy():
    """Why the recipes name the driver (postgresql+psycopg2://): SQLAlchemy 2.1 maps a bare
    postgresql:// to psycopg 3, and Airflow 3 derives its async URL as +asyncpg."""
    from sqlalchemy.engine import make_url

    assert make_url("postgresql://u@h/d").get_dialect().driver == "psycopg"
    assert make_url("postgresql+psycopg2://u@h/d").get_dialect().driver == "psycopg2"
    (root,) = importlib.util.find_spec("airflow").submodule_search_locations
    source = (Path(root) / "settings.py").read_text()
    assert '"postgresql": "asyncpg"' in source


@pytest.fixture(scope="module")
def platform_db(postgres):
    """The recipe's roles and databases on the test server, made by postgres-init.sh."""
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres["port"]),
        "POSTGRES_USER": "postgres",
        "PG_AIRFLOW_PASSWORD": "change-me",
        "PG_MLFLOW_PASSWORD": "change-me",
    }
    subprocess.run(["bash", str(PG / "postgres-init.sh")], env=env, check=True, capture_output=True)
    return postgres


def recipe_url(key: str, port: int):
    """The template's connection URL, pointed at the test server (trust auth: the
    placeholder password is not sent)."""
    from sqlalchemy.engine import make_url

    url = make_url(env_file(PG / "platform.env.template")[key])
    return url, url.set(host="127.0.0.1", port=port, password=None).render_as_string(
        hide_password=False
    )


@pytest.mark.slow
def test_postgres_init_creates_owned_databases(platform_db):
    port = platform_db["port"]
    owners = psql(
        port,
        "postgres",
        "SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database "
        "WHERE datname IN ('airflow', 'mlflow') ORDER BY datname",
    )
    assert owners.splitlines() == ["airflow:airflow", "mlflow:mlflow"]
    logins = psql(
        port,
        "postgres",
        "SELECT rolname FROM pg_roles WHERE rolname IN ('airflow', 'mlflow') AND rolcanlogin "
        "AND NOT rolsuper ORDER BY rolname",
    )
    assert logins.splitlines() == ["airflow", "mlflow"]


@pytest.mark.slow
def test_airflow_db_migrate_on_postgres(platform_db, tmp_path):
    from cryptography.fernet import Fernet

    url, conn = recipe_url("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", platform_db["port"])
    assert (url.drivername, url.username, url.database) == (
        "postgresql+psycopg2",
        "airflow",
        "airflow",
    )
    template = env_file(PG / "platform.env.template")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({k: v for k, v in template.items() if k.startswith("AIRFLOW__")})
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        }
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    done = subprocess.run(
        [airflow, "db", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    done = subprocess.run(
        [airflow, "db", "check-migrations", "--migration-wait-timeout", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    port = platform_db["port"]
    assert psql(port, "airflow", "SELECT count(*) FROM alembic_version") == "1"
    # Made by the recipe's role, in its own database.
    assert psql(port, "airflow", "SELECT tableowner FROM pg_tables WHERE tablename = 'dag'") == (
        "airflow"
    )


MLFLOW_SCRIPT = """
import json, sys
from mlflow.tracking import MlflowClient
uri, artifacts = sys.argv[1], sys.argv[2]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
exp_id = client.create_experiment("deploy-recipe-check", artifact_location=artifacts)
client.create_registered_model("application_pd")
exp = client.get_experiment_by_name("deploy-recipe-check")
models = [m.name for m in client.search_registered_models()]
print(json.dumps({"id": exp_id == exp.experiment_id, "artifacts": exp.artifact_location,
                  "stage": exp.lifecycle_stage, "models": models}))
"""


@pytest.mark.slow
def test_mlflow_tracking_store_on_postgres(platform_db, tmp_path):
    url, conn = recipe_url("MLFLOW_BACKEND_STORE_URI", platform_db["port"])
    assert (url.drivername, url.username, url.database) == (
        "postgresql+psycopg2",
        "mlflow",
        "mlflow",
    )
    artifacts = env_file(PG / "platform.env.template")["MLFLOW_ARTIFACTS_DESTINATION"]
    assert artifacts.startswith("s3://")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_SCRIPT, conn, artifacts],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "id": True,
        "artifacts": artifacts,  # on S3: recorded, not contacted
        "stage": "active",
        "models": ["application_pd"],
    }
    port = platform_db["port"]
    assert (
        psql(
            port,
            "mlflow",
            "SELECT artifact_location FROM experiments WHERE name = 'deploy-recipe-check'",
        )
        == artifacts
    )
    assert psql(
        port, "mlflow", "SELECT tableowner FROM pg_tables WHERE tablename = 'experiments'"
    ) == ("mlflow")


def test_readme_one_liner_turns_the_s3a_conf_into_risk_spark_conf(tmp_path):
    """The command README.md gives for RISK_SPARK_CONF yields the conf file's properties,
    merged into the RISK_SPARK_CONF riskcontrol.env sets (the executors' Python)."""
    readme = (DEPLOY / "README.md").read_text()
    (code,) = re.findall(r"python -c '([^']+)' infra/deploy/s3/spark-s3a\.conf", readme)
    risk = env_file(STANDALONE / "riskcontrol.env")
    done = subprocess.run(
        [sys.executable, "-c", code, str(S3 / "spark-s3a.conf")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RISK_SPARK_CONF": risk["RISK_SPARK_CONF"]},
    )
    assert json.loads(done.stdout) == {
        **json.loads(risk["RISK_SPARK_CONF"]),
        **properties(S3 / "spark-s3a.conf"),
    }
    settings = Settings(home=tmp_path, env="test", spark_conf=json.loads(done.stdout))
    assert settings.spark_conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
