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

use std::path::Path;
use std::time::Duration;

use super::PgError;
use super::install::Installation;
use super::server::{Owner, PgServer};

/// How long the mesh may take to start replicating.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(30);
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

/// The servers and their mesh; every server stops when this is dropped.
pub struct PgCluster {
    pub servers: Vec<PgServer>,
    /// Holds the data directories; removed last.
    _dir: tempfile::TempDir,
}

impl PgCluster {
    /// Starts `nodes` servers resolving conflicts by `resolution`, meshes
    /// them, and waits until every subscription replicates.
    pub async fn start(nodes: usize, resolution: Resolution) -> Result<PgCluster, PgError> {
        let install = Installation::find()?;
        let owner = Owner::for_servers()?;
        let dir = tempfile::Builder::new()
            .prefix("clocklab-pg-")
            .tempdir()
            .map_err(|error| PgError::Setup(format!("cannot make a directory for the servers: {error}")))?;
        if let Some(owner) = owner {
            owner.take(dir.path())?;
        }
        let settings = [
            ("shared_preload_libraries", "pglogical".to_string()),
            ("wal_level", "logical".to_string()),
            ("track_commit_timestamp", "on".to_string()),
            ("max_replication_slots", (2 * nodes + 4).to_string()),
            ("max_wal_senders", (2 * nodes + 4).to_string()),
            ("max_worker_processes", (4 * nodes + 8).to_string()),
            ("pglogical.conflict_resolution", resolution.setting().to_string()),
            ("pglogical.conflict_log_level", "LOG".to_string()),
            ("fsync", "off".to_string()),
        ];
        let mut servers = Vec::new();
        for node in 1..=nodes {
            servers.push(PgServer::start(&install, dir.path(), node, owner, &settings).await?);
        }
        let cluster = PgCluster { servers, _dir: dir };
        cluster.mesh().await?;
        Ok(cluster)
    }

    async fn mesh(&self) -> Result<(), PgError> {
        for server in &self.servers {
            let client = server.connect().await?;
            let setup = format!(
                "CREATE EXTENSION IF NOT EXISTS pglogical;
                 CREATE TABLE kv (key text PRIMARY KEY, items jsonb NOT NULL);
                 SELECT pglogical.create_node(node_name := 'node{}', dsn := '{}');
                 SELECT pglogical.replication_set_add_table('default', 'kv');",
                server.node,
                server.dsn()
            );
            client.batch_execute(&setup).await.map_err(|error| sql(server, "setting up pglogical", error))?;
        }
        for server in &self.servers {
            let client = server.connect().await?;
            for provider in self.servers.iter().filter(|other| other.node != server.node) {
                let subscribe = format!(
                    // Named by both ends: the provider's replication slot is named
                    // by the subscription, and a provider has one per subscriber.
                    "SELECT pglogical.create_subscription(subscription_name := 'node{}_from_node{}', \
                     provider_dsn := '{}', replication_sets := ARRAY['default'], \
                     synchronize_structure := false, synchronize_data := false, forward_origins := '{{}}')",
                    server.node,
                    provider.node,
                    provider.dsn()
                );
                client.batch_execute(&subscribe).await.map_err(|error| sql(server, "subscribing", error))?;
            }
        }
        let deadline = tokio::time::Instant::now() + MESH_TIMEOUT;
        for server in &self.servers {
            let client = server.connect().await?;
            loop {
                let rows = client
                    .query("SELECT subscription_name, status FROM pglogical.show_subscription_status()", &[])
                    .await
                    .map_err(|error| sql(server, "reading subscriptions", error))?;
                let statuses: Vec<String> = rows
                    .iter()
                    .map(|row| format!("{} {}", row.get::<_, String>(0), row.get::<_, String>(1)))
                    .collect();
                let replicating = statuses.iter().filter(|status| status.ends_with(" replicating")).count();
                if replicating == self.servers.len() - 1 {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(PgError::Setup(format!(
                        "node {}'s subscriptions did not all start replicating within {MESH_TIMEOUT:?} ({}); \
                         its log ends: {}",
                        server.node,
                        statuses.join(", "),
                        server.log_tail()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Node `node` (from 1).
    pub fn node(&self, node: usize) -> &PgServer {
        &self.servers[node - 1]
    }

    /// Waits until every node holds a marker row written on every node
    /// after everything before it: each node applies a peer's
    /// transactions in order, so then every change made before the markers
    /// has reached every node (a change lost to a conflict never arrives,
    /// so waiting for the data itself would wait for ever).
    pub async fn settle(&self, round: u64) -> Result<(), PgError> {
        for server in &self.servers {
            let client = server.connect().await?;
            let marker = format!("settle-{round}-node{}", server.node);
            client
                .execute(
                    "INSERT INTO kv (key, items) VALUES ($1, '[]') ON CONFLICT (key) DO NOTHING",
                    &[&marker],
                )
                .await
                .map_err(|error| sql(server, "writing a settle marker", error))?;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        let prefix = format!("settle-{round}-%");
        for server in &self.servers {
            let client = server.connect().await?;
            loop {
                let row = client
                    .query_one("SELECT count(*) FROM kv WHERE key LIKE $1", &[&prefix])
                    .await
                    .map_err(|error| sql(server, "reading settle markers", error))?;
                if row.get::<_, i64>(0) as usize == self.servers.len() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(PgError::Setup(format!(
                        "node {} did not receive every settle marker within {SETTLE_TIMEOUT:?}",
                        server.node
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Where the servers' files are.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Stops every server (a fast shutdown each), then removes their files.
    pub async fn stop(self) {
        let PgCluster { servers, _dir } = self;
        for server in servers {
            server.stop().await;
        }
    }
}

fn sql(server: &PgServer, what: &str, error: tokio_postgres::Error) -> PgError {
    let detail = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_string());
    PgError::Sql(format!("node {}: {what}: {detail}", server.node))
}
