return await EcsNet.Cli.EcsNetCli.RunAsync(args);
