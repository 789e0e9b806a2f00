EcsNet.Core.TorchRuntime.UsePassiveOpenMpWait();
return await EcsNet.Cli.EcsNetCli.RunAsync(args);
