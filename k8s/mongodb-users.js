// MongoDB's users of the pipeline, least privilege (docs/deployment.md, "MongoDB users"): run by
// mongosh, as /docker-entrypoint-initdb.d/mongodb-users.js, once, when MongoDB starts on an empty
// data volume (k8s/mongodb.yaml, docker-compose.yml); run it again by hand to add the users to an
// existing deployment, to rotate their passwords or to apply changed privileges: it creates what
// is missing and updates what exists.
//
//   jobs   the evaluator and explainer: their job records (collection `jobs`) and /ready's probe
//          record (`probes`)
//   trail  the dashboard and `python -m dashboard.choose`: the audit trail of model choices
//          (`selections`) and the turn to choose (`locks`)
//
// Neither may drop, rename or list anything, nor touch the other's collections or another
// database. The root user (MONGO_INITDB_ROOT_*) stays for this script and for operators.
//
// ROLES is JSON: tests/deploy/test_mongo_users.py reads it and checks it against the store's
// calls (jobs/jobstore.py, jobs/attempts.py, jobs/selections.py): a call the privileges do not
// cover fails that test, and so does a privilege no call needs.
const ROLES = {
  "mlpipelineJobs": {
    "jobs": ["createIndex", "find", "insert", "update"],
    "probes": ["find", "insert", "remove"]
  },
  "mlpipelineTrail": {
    "locks": ["find", "insert", "remove", "update"],
    "selections": ["createIndex", "find", "insert"]
  }
};
const USERS = [
  { user: "jobs", role: "mlpipelineJobs", password: "MONGO_INITDB_JOBS_PASSWORD" },
  { user: "trail", role: "mlpipelineTrail", password: "MONGO_INITDB_TRAIL_PASSWORD" }
];
// The services' database: MONGO_DB of common/settings.py, mlpipeline unless set.
const target = db.getSiblingDB(process.env.MONGO_DB || "mlpipeline");

for (const { password } of USERS) {
  const value = process.env[password] || "";
  if (value === "" || value === "CHANGE-ME") {
    throw new Error(password + " is empty or CHANGE-ME: set it (docs/deployment.md)");
  }
}

// The collections exist beforehand, so that no user needs createCollection.
const existing = target.getCollectionNames();
for (const privileges of Object.values(ROLES)) {
  for (const name of Object.keys(privileges)) {
    if (!existing.includes(name)) {
      target.createCollection(name);
      existing.push(name);
    }
  }
}

for (const [role, collections] of Object.entries(ROLES)) {
  const privileges = Object.entries(collections).map(([collection, actions]) => ({
    resource: { db: target.getName(), collection: collection },
    actions: actions
  }));
  if (target.getRole(role) === null) {
    target.createRole({ role: role, privileges: privileges, roles: [] });
  } else {
    target.updateRole(role, { privileges: privileges, roles: [] });
  }
}

for (const { user, role, password } of USERS) {
  const fields = { pwd: process.env[password], roles: [{ role: role, db: target.getName() }] };
  if (target.getUser(user) === null) {
    target.createUser({ user: user, ...fields });
  } else {
    target.updateUser(user, fields);
  }
  print("MongoDB user " + user + " (role " + role + ") on database " + target.getName());
}
