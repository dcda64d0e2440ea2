//! N PostgreSQL servers in a pglogical full mesh.
//!
//! Every node publishes the table `kv` and subscribes to every other
//! node's changes with `forward_origins := '{}'`, so a change travels one
//! hop and never comes back. There is no initial copy (`synchronize_data
//! := false`): the table starts empty everywhere, and the cluster is ready
//! once every subscription on every node says `replicating`. Each node
//! resolves a conflict on an incoming change by its
//! `pglogical.conflict_resolution`; `last_update_wins` compares commit
//! timestamps (`track_commit_timestamp`), which come from each server's own
//! wall clock: DDIA's Figure 8-3, on a real database.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::PgError;
use super::install::Installation;
use super::server::{Owner, PgServer};

/// How long the mesh may take to start replicating.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a subscription may stay down while the mesh starts before it
/// is restarted.
pub const RESTART_DOWN_AFTER: Duration = Duration::from_secs(4);
/// How long a settle marker may take to reach every node.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How a node resolves a conflicting incoming change (`pglogical.conflict_resolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The change with the later commit timestamp wins.
    LastUpdateWins,
    /// The change with the earlier commit timestamp wins.
    FirstUpdateWins,
    /// The incoming change wins.
    ApplyRemote,
    /// The local row wins.
    KeepLocal,
}

impl Resolution {
    pub fn setting(self) -> &'static str {
        match self {
            Resolution::LastUpdateWins => "last_update_wins",
            Resolution::FirstUpdateWins => "first_update_wins",
            Resolution::ApplyRemote => "apply_remote",
            Resolution::KeepLocal => "keep_local",
        }
    }
}

impl Resolution {
    /// Every mode, in the order reports list them.
    pub const ALL: [Resolution; 4] = [
        Resolution::LastUpdateWins,
        Resolution::FirstUpdateWins,
        Resolution::ApplyRemote,
        Resolution::KeepLocal,
    ];

    /// The database that resolves by this mode: one per mode on every
    /// server, so that every mode sees the same clocks.
    pub fn database(self) -> &'static str {
        self.setting()
    }

    /// The lab's bucket for this mode: `pg-` and the setting, in the lab's spelling.
    pub fn bucket(self) -> &'static str {
        match self {
            Resolution::LastUpdateWins => "pg-last-update-wins",
            Resolution::FirstUpdateWins => "pg-first-update-wins",
            Resolution::ApplyRemote => "pg-apply-remote",
            Resolution::KeepLocal => "pg-keep-local",
        }
    }

    /// What a node does in this mode, in a line for a page's key.
    pub fn about(self) -> &'static str {
        match self {
            Resolution::LastUpdateWins => {
                "PostgreSQL + pglogical: an incoming change wins if its commit timestamp (the writer's wall clock) is later"
            }
            Resolution::FirstUpdateWins => {
                "PostgreSQL + pglogical: an incoming change wins if its commit timestamp is earlier"
            }
            Resolution::ApplyRemote => "PostgreSQL + pglogical: an incoming change always wins",
            Resolution::KeepLocal => "PostgreSQL + pglogical: the row a node already holds always wins",
        }
    }

    /// The mode whose bucket is `bucket`, if it is one.
    pub fn of_bucket(bucket: &str) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|mode| mode.bucket() == bucket)
    }
}

/// Connections a server takes: the workload's clients, the lab's own, and
/// pglogical's senders and workers.
pub const MAX_CONNECTIONS: usize = 300;

/// How long a subscription may take to stop, or start, applying once it
/// is disabled, or enabled.
pub const SUBSCRIPTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers and their mesh; every server stops when this is dropped.
pub struct PgCluster {
    /// The lab's own connection to each node's database of each mode, by
    /// node (from 0) and mode (as in `resolutions`): cuts, heals, settle
    /// markers and final reads go through these, not through new
    /// connections, so that a step takes milliseconds.
    links: Vec<Vec<tokio_postgres::Client>>,
    pub servers: Vec<PgServer>,
    /// The modes it resolves by, a database each.
    pub resolutions: Vec<Resolution>,
    /// Holds the data directories; removed last.
    _dir: tempfile::TempDir,
}

impl PgCluster {
    /// Starts `nodes` servers, each with a database per mode of
    /// `resolutions` resolving conflicts by that mode, meshes every
    /// database, and waits until every subscription replicates.
    pub async fn start(nodes: usize, resolutions: &[Resolution]) -> Result<PgCluster, PgError> {
        let install = Installation::find()?;
        let owner = Owner::for_servers()?;
        let dir = tempfile::Builder::new()
            .prefix("clocklab-pg-")
            .tempdir()
            .map_err(|error| PgError::Setup(format!("cannot make a directory for the servers: {error}")))?;
        if let Some(owner) = owner {
            owner.take(dir.path())?;
        }
        let databases = resolutions.len().max(1);
        // Per database, a node has a sender and a slot for each subscriber,
        // and a manager and an apply worker for each provider.
        let links = databases * nodes;
        let settings = [
            ("shared_preload_libraries", "pglogical".to_string()),
            ("wal_level", "logical".to_string()),
            ("track_commit_timestamp", "on".to_string()),
            ("max_replication_slots", (links + 4).to_string()),
            ("max_wal_senders", (links + 4).to_string()),
            ("max_worker_processes", (2 * links + 8).to_string()),
            ("max_connections", MAX_CONNECTIONS.to_string()),
            ("pglogical.conflict_log_level", "LOG".to_string()),
            // Time (from the server's own, bent, clock), process, database:
            // a conflict's line names the mode it was resolved by.
            ("log_line_prefix", "%m [%p] %d ".to_string()),
            ("fsync", "off".to_string()),
        ];
        // The servers start side by side: initdb is most of the wait.
        let starts = (1..=nodes).map(|node| PgServer::start(&install, dir.path(), node, owner, &settings));
        let servers = futures::future::join_all(starts).await.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut cluster =
            PgCluster { links: Vec::new(), servers, resolutions: resolutions.to_vec(), _dir: dir };
        cluster.create_databases().await?;
        cluster.mesh().await?;
        for server in &cluster.servers {
            let mut links = Vec::new();
            for resolution in &cluster.resolutions {
                links.push(server.connect_to(resolution.database()).await?);
            }
            cluster.links.push(links);
        }
        Ok(cluster)
    }

    /// The lab's connection to node `node`'s database of mode `resolution`.
    pub fn link(&self, node: usize, resolution: Resolution) -> Result<&tokio_postgres::Client, PgError> {
        let mode = self.resolutions.iter().position(|known| *known == resolution);
        mode.and_then(|mode| self.links.get(node.checked_sub(1)?)?.get(mode)).ok_or_else(|| {
            PgError::Setup(format!("node {node} has no database for {}", resolution.setting()))
        })
    }

    /// A database per mode on every server, resolving by that mode: the
    /// setting is the database's own, so pglogical's apply workers, which
    /// connect to it, take it up.
    async fn create_databases(&self) -> Result<(), PgError> {
        for server in &self.servers {
            let client = server.connect().await?;
            for resolution in &self.resolutions {
                let database = resolution.database();
                // Two statements: a batch is one transaction, and CREATE DATABASE refuses one.
                let create = format!("CREATE DATABASE {database}");
                let set = format!(
                    "ALTER DATABASE {database} SET pglogical.conflict_resolution = '{}'",
                    resolution.setting()
                );
                for statement in [create, set] {
                    client
                        .batch_execute(&statement)
                        .await
                        .map_err(|error| sql(server, "creating a database", error))?;
                }
            }
        }
        Ok(())
    }

    async fn mesh(&self) -> Result<(), PgError> {
        for server in &self.servers {
            for resolution in &self.resolutions {
                let database = resolution.database();
                let client = server.connect_to(database).await?;
                let setup = format!(
                    "CREATE EXTENSION IF NOT EXISTS pglogical;
                     CREATE TABLE kv (key text PRIMARY KEY, items jsonb NOT NULL, write_id text NOT NULL DEFAULT '');
                     SELECT pglogical.create_node(node_name := 'node{}', dsn := '{}');
                     SELECT pglogical.replication_set_add_table('default', 'kv');",
                    server.node,
                    server.dsn(database)
                );
                client
                    .batch_execute(&setup)
                    .await
                    .map_err(|error| sql(server, "setting up pglogical", error))?;
            }
        }
        for server in &self.servers {
            for resolution in &self.resolutions {
                let database = resolution.database();
                let client = server.connect_to(database).await?;
                for provider in self.servers.iter().filter(|other| other.node != server.node) {
                    let subscribe = format!(
                        // Named by both ends: the provider's replication slot is named
                        // by the database and the subscription, and a provider has one
                        // per subscriber.
                        "SELECT pglogical.create_subscription(subscription_name := '{}', \
                         provider_dsn := '{}', replication_sets := ARRAY['default'], \
                         synchronize_structure := false, synchronize_data := false, forward_origins := '{{}}')",
                        subscription(server.node, provider.node),
                        provider.dsn(database)
                    );
                    client
                        .batch_execute(&subscribe)
                        .await
                        .map_err(|error| sql(server, "subscribing", error))?;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + MESH_TIMEOUT;
        for server in &self.servers {
            for resolution in &self.resolutions {
                let client = server.connect_to(resolution.database()).await?;
                // When each subscription was first seen down, to restart it
                // once it has stayed so for `RESTART_DOWN_AFTER`.
                let mut down_since: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
                loop {
                    let rows = client
                        .query(
                            "SELECT subscription_name, status FROM pglogical.show_subscription_status()",
                            &[],
                        )
                        .await
                        .map_err(|error| sql(server, "reading subscriptions", error))?;
                    let statuses: Vec<(String, String)> =
                        rows.iter().map(|row| (row.get::<_, String>(0), row.get::<_, String>(1))).collect();
                    let replicating = statuses.iter().filter(|(_, status)| status == "replicating").count();
                    if replicating == self.servers.len() - 1 {
                        break;
                    }
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        let shown: Vec<String> =
                            statuses.iter().map(|(name, status)| format!("{name} {status}")).collect();
                        return Err(PgError::Setup(format!(
                            "node {}'s subscriptions in {} did not all start replicating within \
                             {MESH_TIMEOUT:?} ({}); its last errors: {}",
                            server.node,
                            resolution.database(),
                            shown.join(", "),
                            server.log_errors()
                        )));
                    }
                    // An apply worker that failed as it started (a slot still
                    // held by a walsender on its way out, say) is not always
                    // tried again soon: restart its subscription.
                    for (name, status) in &statuses {
                        if status != "down" {
                            down_since.remove(name);
                            continue;
                        }
                        let since = *down_since.entry(name.clone()).or_insert(now);
                        if now - since >= RESTART_DOWN_AFTER {
                            tracing::warn!(
                                node = server.node,
                                database = resolution.database(),
                                name,
                                "restarting a subscription that stayed down"
                            );
                            // Seen in CI: its apply worker kept failing with "replication
                            // origin with ID N is already active for PID P", an earlier
                            // worker of the mesh's start still holding the origin. That
                            // process goes first (pglogical starts what it must again).
                            if let Some(holder) = server.origin_holder() {
                                let _ = client.execute("SELECT pg_terminate_backend($1)", &[&holder]).await;
                            }
                            for call in ["alter_subscription_disable", "alter_subscription_enable"] {
                                client
                                    .execute(
                                        &format!("SELECT pglogical.{call}($1, immediate := true)"),
                                        &[name],
                                    )
                                    .await
                                    .map_err(|error| sql(server, "restarting a subscription", error))?;
                            }
                            down_since.remove(name);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Ok(())
    }

    /// Node `node` (from 1).
    pub fn node(&self, node: usize) -> &PgServer {
        &self.servers[node - 1]
    }

    /// Whether node `subscriber` applies what node `provider` sends, in every
    /// database: a cut link is a disabled subscription. A disabled
    /// subscription keeps its slot on the provider, so once it is enabled
    /// again the changes made meanwhile arrive, in order.
    ///
    /// Returns once every database's apply worker has stopped (or, enabled,
    /// is replicating again), so that a cut is in force when it is recorded.
    pub async fn set_subscription(
        &self,
        subscriber: usize,
        provider: usize,
        enabled: bool,
    ) -> Result<(), PgError> {
        let server = self.node(subscriber);
        let call = if enabled { "alter_subscription_enable" } else { "alter_subscription_disable" };
        let name = subscription(subscriber, provider);
        let changes = self.resolutions.iter().map(|&resolution| {
            let name = &name;
            async move {
                let client = self.link(subscriber, resolution)?;
                client
                    .execute(&format!("SELECT pglogical.{call}($1, immediate := true)"), &[name])
                    .await
                    .map_err(|error| sql(server, "changing a subscription", error))?;
                let deadline = tokio::time::Instant::now() + SUBSCRIPTION_TIMEOUT;
                loop {
                    let status: String = client
                        .query_one("SELECT status FROM pglogical.show_subscription_status($1)", &[name])
                        .await
                        .map_err(|error| sql(server, "reading a subscription", error))?
                        .get(0);
                    if (status == "replicating") == enabled {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(PgError::Setup(format!(
                            "node {subscriber}'s subscription {name} in {} is still {status} \
                             {SUBSCRIPTION_TIMEOUT:?} after it was {}",
                            resolution.database(),
                            if enabled { "enabled" } else { "disabled" }
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        futures::future::try_join_all(changes).await?;
        Ok(())
    }

    /// Writes round `round`'s marker rows: one on every node, in every database.
    pub async fn write_markers(&self, round: u64) -> Result<(), PgError> {
        for server in &self.servers {
            for &resolution in &self.resolutions {
                let client = self.link(server.node, resolution)?;
                client
                    .execute(
                        "INSERT INTO kv (key, items) VALUES ($1, '[]') ON CONFLICT (key) DO NOTHING",
                        &[&marker(round, server.node)],
                    )
                    .await
                    .map_err(|error| sql(server, "writing a settle marker", error))?;
            }
        }
        Ok(())
    }

    /// Whether every node holds round `round`'s every marker, in every database.
    pub async fn markers_arrived(&self, round: u64) -> Result<bool, PgError> {
        let prefix = format!("{MARKER_PREFIX}{round}-%");
        for server in &self.servers {
            for &resolution in &self.resolutions {
                let client = self.link(server.node, resolution)?;
                let row = client
                    .query_one("SELECT count(*) FROM kv WHERE key LIKE $1", &[&prefix])
                    .await
                    .map_err(|error| sql(server, "reading settle markers", error))?;
                if row.get::<_, i64>(0) as usize != self.servers.len() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Waits until every node holds a marker row written on every node
    /// after everything before it: each node applies a peer's
    /// transactions in order, so then every change made before the markers
    /// has reached every node (a change lost to a conflict never arrives,
    /// so waiting for the data itself would wait for ever).
    pub async fn settle(&self, round: u64) -> Result<(), PgError> {
        self.write_markers(round).await?;
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        while !self.markers_arrived(round).await? {
            if tokio::time::Instant::now() >= deadline {
                return Err(PgError::Setup(format!(
                    "not every node received every settle marker within {SETTLE_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Where the servers' files are.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Stops every server (a fast shutdown each), then removes their files.
    pub async fn stop(self) {
        let PgCluster { servers, links, .. } = self;
        drop(links);
        for server in servers {
            server.stop().await;
        }
    }
}

/// Keys of settle markers start so; they are not the workload's.
pub const MARKER_PREFIX: &str = "settle-";

fn marker(round: u64, node: usize) -> String {
    format!("{MARKER_PREFIX}{round}-node{node}")
}

/// The subscription by which `subscriber` applies `provider`'s changes.
fn subscription(subscriber: usize, provider: usize) -> String {
    format!("node{subscriber}_from_node{provider}")
}

fn sql(server: &PgServer, what: &str, error: tokio_postgres::Error) -> PgError {
    let detail = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_string());
    PgError::Sql(format!("node {}: {what}: {detail}", server.node))
}
