//! The same workload as workload a) of benches/vs_locust.py: every user loops on `GET /`
//! with no wait between requests.
use goose::prelude::*;

async fn get_root(user: &mut GooseUser) -> TransactionResult {
    let _goose = user.get("/").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenario!("Root").register_transaction(transaction!(get_root)))
        .execute()
        .await?;
    Ok(())
}
