"""k8s/mongodb-users.js: MongoDB's least-privilege users. Each role grants exactly the actions
that the store's calls need, derived here from the code (jobs/*.py: a call the role does not
cover, or a privilege no call needs, fails), and the script itself, run by node against a stand-in
``db``, creates what is missing, updates what exists and refuses placeholder passwords.

No ``mongod`` runs here: that a real server accepts these calls under these privileges is checked
by CI's compose-smoke job (the services' /ready writes as the user `jobs`, and that user is
refused the audit trail and dropping its collection)."""

import ast
import json
import re
import shutil
import subprocess

import pytest

from tests.deploy.conftest import K8S_DIR, ROOT, _require

SCRIPT = K8S_DIR / "mongodb-users.js"
# Which store classes each role serves: the evaluator and explainer open a JobStore (jobs.api),
# the dashboard and `python -m dashboard.choose` a SelectionStore (dashboard/trail.py).
ROLE_CLASSES = {"mlpipelineJobs": {"JobStore"}, "mlpipelineTrail": {"SelectionStore"}}
# Classes that call methods on another class's collection (``store.col``): the job services'
# metrics count the job records of their JobStore.
OTHER_HOLDERS = {"JobGauges": "JobStore"}
# The privilege actions each pymongo Collection method needs (MongoDB's "Privilege Actions";
# count_documents and distinct run `aggregate`/`distinct`, which need `find`; findAndModify needs
# `find` and `update`, or `remove` to delete; an upsert needs `insert` too).
METHOD_ACTIONS = {
    "find": {"find"},
    "find_one": {"find"},
    "count_documents": {"find"},
    "estimated_document_count": {"find"},
    "distinct": {"find"},
    "aggregate": {"find"},
    "insert_one": {"insert"},
    "insert_many": {"insert"},
    "update_one": {"update"},
    "update_many": {"update"},
    "replace_one": {"update"},
    "delete_one": {"remove"},
    "delete_many": {"remove"},
    "find_one_and_update": {"find", "update"},
    "find_one_and_replace": {"find", "update"},
    "find_one_and_delete": {"find", "remove"},
    "create_index": {"createIndex"},
    "create_indexes": {"createIndex"},
    "list_indexes": {"listIndexes"},
    "index_information": {"listIndexes"},
    "drop_index": {"dropIndex"},
    "drop_indexes": {"dropIndex"},
    "drop": {"dropCollection"},
    "rename": {"renameCollectionSameDB"},
}
# Methods whose privileges depend on their arguments in ways not worked out here.
UNMAPPED = {"bulk_write", "watch", "aggregate_raw_batches", "find_raw_batches"}


def script_roles() -> dict[str, dict[str, set[str]]]:
    """ROLES of the script: {role: {collection: actions}}."""
    block = re.search(r"^const ROLES = (\{.*?^\});$", SCRIPT.read_text(), re.S | re.M)
    assert block, "const ROLES = {...}; (JSON) not found in mongodb-users.js"
    roles = json.loads(block.group(1))
    return {role: {c: set(a) for c, a in cols.items()} for role, cols in roles.items()}


def script_users() -> list[dict]:
    """USERS of the script: user, role and the environment variable of its password."""
    pattern = r'\{ user: "(\w+)", role: "(\w+)", password: "(\w+)" \}'
    found = re.findall(pattern, SCRIPT.read_text())
    return [{"user": u, "role": r, "password": p} for u, r, p in found]


def _database_subscript(node: ast.AST) -> str | None:
    """``db["name"]``, ``self.db["name"]``, ``x.database["name"]``: the collection's name."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)):
        return None
    value = node.value
    name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", None)
    if name in ("db", "database") and isinstance(node.slice.value, str):
        return node.slice.value
    return None


def _is_self_col(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "col"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _store_classes() -> dict[str, ast.ClassDef]:
    classes = {}
    for path in sorted((ROOT / "jobs").glob("*.py")):
        if path.name == "embedded.py":  # the embedded store implements these methods itself
            continue
        tree = ast.parse(path.read_text(), str(path))
        classes |= {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    return classes


def _own_collection(cls: ast.ClassDef) -> str | None:
    """The collection a class keeps as ``self.col`` (``self.col = db["name"]``)."""
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign) and any(_is_self_col(t) for t in node.targets):
            return _database_subscript(node.value)
    return None


def store_calls() -> tuple[dict[str, dict[str, set[str]]], list[str]]:
    """{class: {collection: methods called}} of the classes in jobs/, with what a base class
    (AttemptRecords) calls on ``self.col`` counted for the subclass that sets it, and what a
    reader of another class's ``col`` calls (OTHER_HOLDERS) for that class; and the calls of a
    Collection method on something not known to be a collection (to be resolved)."""
    classes = _store_classes()
    bases_of = {
        name: [b.id for b in cls.bases if isinstance(b, ast.Name) and b.id in classes]
        for name, cls in classes.items()
    }
    calls: dict[str, dict[str, set[str]]] = {}
    unresolved: list[str] = []
    for name, cls in classes.items():
        own = _own_collection(cls)
        if own is None and any(name in bases for bases in bases_of.values()):
            continue  # a base class: counted with the subclass that sets ``self.col``
        holder = OTHER_HOLDERS.get(name)
        for part in (cls, *(classes[b] for b in bases_of[name])):
            for function in (n for n in part.body if isinstance(n, ast.FunctionDef)):
                local = _local_collections(function)  # nested functions see them too
                for node in ast.walk(function):
                    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                        continue
                    method, receiver = node.func.attr, node.func.value
                    if _is_self_col(receiver):
                        collection = own
                    elif holder and isinstance(receiver, ast.Attribute) and receiver.attr == "col":
                        collection = _own_collection(classes[holder])
                    elif isinstance(receiver, ast.Name):
                        collection = local.get(receiver.id)
                    else:
                        collection = _database_subscript(receiver)
                    if collection is None:
                        if method in METHOD_ACTIONS or method in UNMAPPED:
                            unresolved.append(f"{name}.{function.name}: {ast.unparse(node)}")
                        continue
                    upsert = any(k.arg == "upsert" for k in node.keywords)
                    found = calls.setdefault(holder or name, {}).setdefault(collection, set())
                    found.add(method + ("+upsert" if upsert else ""))
    return calls, unresolved


def _local_collections(function: ast.FunctionDef) -> dict[str, str]:
    """Local names bound to a collection: ``col = self.db["probes"]``, ``locks, key = x.database[
    "locks"], ...``."""
    local = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            for name, value in pairs:
                collection = _database_subscript(value)
                if isinstance(name, ast.Name) and collection:
                    local[name.id] = collection
    return local


def needed_actions(methods: set[str]) -> set[str]:
    actions = set()
    for method in methods:
        name, _, upsert = method.partition("+")
        assert name not in UNMAPPED, f"{name}: work out its privileges, then map it here"
        actions |= METHOD_ACTIONS[name] | ({"insert"} if upsert else set())
    return actions


def test_every_collection_call_of_the_store_is_understood():
    calls, unresolved = store_calls()
    assert not unresolved, "Collection calls on an unknown collection: " + "; ".join(unresolved)
    assert {"JobStore", "SelectionStore"} <= set(calls)


@pytest.mark.parametrize("role", sorted(ROLE_CLASSES))
def test_each_role_grants_exactly_what_its_store_calls_need(role):
    calls, _ = store_calls()
    needed: dict[str, set[str]] = {}
    for cls in ROLE_CLASSES[role]:
        for collection, methods in calls[cls].items():
            needed.setdefault(collection, set()).update(needed_actions(methods))
    granted = script_roles()[role]
    for collection in sorted(granted.keys() | needed.keys()):
        have, need = granted.get(collection, set()), needed.get(collection, set())
        assert have == need, f"{role} on {collection}: missing {need - have}, unused {have - need}"


def test_the_store_runs_no_database_command_but_ping():
    """Database commands are not Collection calls: ``ping`` needs no privilege; any other would
    need one that no role grants."""
    commands = set()
    for path in sorted((ROOT / "jobs").glob("*.py")):
        if path.name == "embedded.py":  # the embedded store's own ``command``
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr == "command":
                commands.add(ast.unparse(node.args[0]) if node.args else "?")
    assert commands == {"'ping'"}


def test_the_derivation_sees_the_calls_it_must():
    """The scan itself: the calls known to be there are found, on the right collections."""
    calls, _ = store_calls()
    assert {"insert_one", "find_one", "delete_many"} <= calls["JobStore"]["probes"]
    assert "find_one_and_update" in calls["JobStore"]["jobs"]  # AttemptRecords, a base class
    assert {"insert_one", "delete_many"} <= calls["SelectionStore"]["locks"]
    assert "create_index" in calls["SelectionStore"]["selections"]


def test_no_role_may_drop_list_or_administer():
    granted = {a for cols in script_roles().values() for acts in cols.values() for a in acts}
    assert granted <= {"find", "insert", "update", "remove", "createIndex"}


def test_the_job_services_and_the_trail_share_no_collection():
    roles = script_roles()
    assert not set(roles["mlpipelineJobs"]) & set(roles["mlpipelineTrail"])
    assert "selections" not in roles["mlpipelineJobs"]


# The code each service runs that might open a store, and the store class it must not open.
NOT_OPENED = {
    "evaluator": ("SelectionStore", ["evaluator", "jobs/api.py"]),
    "explainer": ("SelectionStore", ["explainer", "jobs/api.py"]),
    "dashboard": ("JobStore", ["dashboard"]),
    "predictor": ("get_database", ["predictor"]),
}


@pytest.mark.parametrize("service", sorted(NOT_OPENED))
def test_each_service_opens_only_its_role_s_store(service):
    """The roles follow the services' code: the job services never open the trail, the
    dashboard never the job records, the predictor no store at all (it gets no MONGO_URI)."""
    name, places = NOT_OPENED[service]
    for place in places:
        paths = [ROOT / place] if place.endswith(".py") else (ROOT / place).rglob("*.py")
        for path in paths:
            assert name not in path.read_text(), path


def test_every_user_has_a_role_of_the_script():
    users = script_users()
    assert [u["user"] for u in users] == ["jobs", "trail"]
    assert {u["role"] for u in users} == set(script_roles())
    assert {u["password"] for u in users} == {
        "MONGO_INITDB_JOBS_PASSWORD",
        "MONGO_INITDB_TRAIL_PASSWORD",
    }


@pytest.fixture(scope="module")
def node() -> str:
    return _require("node", shutil.which("node"), "install Node.js")


def test_the_script_is_valid_javascript(node, tmp_path):
    copy = tmp_path / "mongodb-users.js"
    shutil.copy(SCRIPT, copy)
    result = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# Runs the script in node against a stand-in for mongosh's `db` that records its calls.
HARNESS = r"""
const vm = require("vm"), fs = require("fs");
const [file, state, env] = process.argv.slice(1).map((a, i) => i ? JSON.parse(a) : a);
const calls = [];
const target = {
  getName: () => "mlpipeline",
  getCollectionNames: () => state.collections.slice(),
  createCollection: (name) => calls.push(["createCollection", name]),
  getRole: (name) => (state.roles.includes(name) ? { role: name } : null),
  createRole: (spec) => calls.push(["createRole", spec]),
  updateRole: (name, spec) => calls.push(["updateRole", name, spec]),
  getUser: (name) => (state.users.includes(name) ? { user: name } : null),
  createUser: (spec) => calls.push(["createUser", spec]),
  updateUser: (name, spec) => calls.push(["updateUser", name, spec]),
};
const db = { getSiblingDB: (name) => { calls.push(["getSiblingDB", name]); return target; } };
try {
  vm.runInNewContext(fs.readFileSync(file, "utf8"), { db, process: { env }, print: () => {} });
  console.log(JSON.stringify({ calls }));
} catch (error) {
  console.log(JSON.stringify({ calls, error: String(error.message) }));
}
"""
PASSWORDS = {"MONGO_INITDB_JOBS_PASSWORD": "j" * 48, "MONGO_INITDB_TRAIL_PASSWORD": "t" * 48}


def run_script(node: str, state: dict, env: dict) -> dict:
    argv = [node, "-e", HARNESS, str(SCRIPT), json.dumps(state), json.dumps(env)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_on_a_new_database_it_creates_collections_roles_and_users(node):
    empty = {"collections": [], "roles": [], "users": []}
    out = run_script(node, empty, PASSWORDS)
    assert "error" not in out, out["error"]
    kinds = [call[0] for call in out["calls"]]
    assert out["calls"][0] == ["getSiblingDB", "mlpipeline"]
    assert sorted(c[1] for c in out["calls"] if c[0] == "createCollection") == sorted(
        {c for cols in script_roles().values() for c in cols}
    )
    roles = {c[1]["role"]: c[1] for c in out["calls"] if c[0] == "createRole"}
    for role, collections in script_roles().items():
        privileges = roles[role]["privileges"]
        assert {p["resource"]["collection"]: set(p["actions"]) for p in privileges} == collections
        assert {p["resource"]["db"] for p in privileges} == {"mlpipeline"}
        assert roles[role]["roles"] == []  # nothing inherited
    users = {c[1]["user"]: c[1] for c in out["calls"] if c[0] == "createUser"}
    for user in script_users():
        assert users[user["user"]]["pwd"] == PASSWORDS[user["password"]]
        assert users[user["user"]]["roles"] == [{"role": user["role"], "db": "mlpipeline"}]
    assert "updateRole" not in kinds and "updateUser" not in kinds


def test_run_again_it_updates_privileges_and_passwords(node):
    """An existing deployment, a rotation, a changed privilege: the same script, run by hand."""
    everything = {
        "collections": ["jobs", "probes", "selections", "locks"],
        "roles": list(script_roles()),
        "users": ["jobs", "trail"],
    }
    out = run_script(node, everything, PASSWORDS)
    assert "error" not in out, out["error"]
    kinds = [call[0] for call in out["calls"]]
    assert kinds.count("updateRole") == 2 and kinds.count("updateUser") == 2
    assert not {"createCollection", "createRole", "createUser"} & set(kinds)
    updated = {c[1]: c[2] for c in out["calls"] if c[0] == "updateUser"}
    assert updated["jobs"]["pwd"] == PASSWORDS["MONGO_INITDB_JOBS_PASSWORD"]


@pytest.mark.parametrize("value", ["", "CHANGE-ME"])
@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_it_refuses_a_placeholder_password_before_any_change(node, name, value):
    env = {**PASSWORDS, name: value}
    if not value:
        del env[name]
    out = run_script(node, {"collections": [], "roles": [], "users": []}, env)
    assert out["error"] == f"{name} is empty or CHANGE-ME: set it (docs/deployment.md)"
    assert [call[0] for call in out["calls"]] == ["getSiblingDB"]
